"""The command line speaks in one line: a fresh DATA_DIR is brought up to date rather than met
with a SQLAlchemy traceback, a busy sandbox port names SANDBOX_PORT, a missing model or an
unreadable image says so, and the traceback comes only with -v. Captions read as in the chat
unless --raw. Each runs `python -m captionbot.cli` as a person would."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from service_stack import REPO_ROOT, jpeg_bytes

from captioning.text import as_sentence

TENSORFLOW_CHATTER = ("oneDNN custom operations", "absl::InitializeLog", "cpu_feature_guard")
# What `up` and its children would otherwise take from the developer's environment.
SERVICE_VARIABLES = ("TELEGRAM_TOKEN", "TELEGRAM_API_URL", "REDIS_URL", "DATABASE_URL", "TF_CPP_MIN_LOG_LEVEL")


def captionbot(args: list[str], **env: str) -> subprocess.CompletedProcess:
    clean = {key: value for key, value in os.environ.items() if key not in SERVICE_VARIABLES}
    return subprocess.run([sys.executable, "-m", "captionbot.cli", *args], cwd=REPO_ROOT, env={**clean, **env},
                          capture_output=True, text=True, timeout=180)


def stderr_lines(result: subprocess.CompletedProcess) -> list[str]:
    return result.stderr.strip().splitlines()


@pytest.fixture
def busy_port():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


@pytest.fixture
def shipped_bundle(tmp_path) -> Path:
    """All `models` reads of a bundle is its config.json."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "config.json").write_text(json.dumps({"version": "shipped-1", "encoder": "efficientnet_lite2"}))
    return bundle


def test_models_in_an_empty_data_dir_brings_the_database_up_to_date_and_exits_0(tmp_path, shipped_bundle):
    data_dir = tmp_path / "never-used"

    result = captionbot(["models"], DATA_DIR=str(data_dir), MODEL_DIR=str(shipped_bundle))

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "alembic" not in result.stderr, result.stderr
    assert len(stderr_lines(result)) <= 1, result.stderr  # "registered the default bundle…"
    assert "*shipped-1" in result.stdout and (data_dir / "captionbot.db").exists()


def test_the_worker_and_the_bot_name_the_migration_to_run_in_one_line_on_a_database_never_migrated(tmp_path):
    for args in (["worker", "--queue", "training", "--burst"], ["bot"]):
        result = captionbot(args, DATA_DIR=str(tmp_path / "fresh"), TELEGRAM_TOKEN="1:x")

        assert result.returncode == 1
        assert stderr_lines(result) == [
            f"captionbot {args[0]}: the database sqlite:///{tmp_path / 'fresh' / 'captionbot.db'} has no schema yet: "
            "run `captionbot migrate` first"
        ]
        assert not (tmp_path / "fresh" / "captionbot.db").exists(), "checking creates no empty database file"


@pytest.mark.parametrize("command", ["sandbox", "up"])
def test_a_busy_sandbox_port_is_one_line_naming_sandbox_port(tmp_path, busy_port, shipped_bundle, command):
    result = captionbot([command], SANDBOX_PORT=str(busy_port), DATA_DIR=str(tmp_path / "data"),
                        MODEL_DIR=str(shipped_bundle))

    assert result.returncode == 1
    [line] = stderr_lines(result)
    assert line.startswith(f"captionbot {command}: the sandbox's port {busy_port} ") and "SANDBOX_PORT" in line


def test_with_v_a_failure_shows_its_traceback(tmp_path, busy_port):
    result = captionbot(["-v", "sandbox"], SANDBOX_PORT=str(busy_port), DATA_DIR=str(tmp_path))

    assert result.returncode == 1
    assert "Traceback" in result.stderr and "SANDBOX_PORT" in result.stderr


def test_caption_prints_sentences_as_the_chat_does_and_raw_prints_the_models_text(tmp_path, service_model_bundle):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(jpeg_bytes(seed=61))
    env = {"DATA_DIR": str(tmp_path), "MODEL_DIR": str(service_model_bundle)}

    shown = captionbot(["caption", str(photo)], **env)
    raw = captionbot(["caption", "--raw", str(photo)], **env)

    assert shown.returncode == raw.returncode == 0, shown.stderr + raw.stderr
    shown_text = shown.stdout.strip().removeprefix(f"{photo}: ")
    raw_text = raw.stdout.rstrip("\n").removeprefix(f"{photo}: ")
    assert raw_text == raw_text.lower() and not raw_text.endswith("."), "the model's own words"
    assert shown_text == as_sentence(raw_text) and shown_text[0].isupper() and shown_text.endswith(".")
    for output in (shown.stderr, raw.stderr):
        assert not [chatter for chatter in TENSORFLOW_CHATTER if chatter in output], output


def test_export_encoder_prints_the_files_path_and_no_tensorflow_chatter(tmp_path, service_model_bundle):
    # ENCODER_CACHE_DIR is the run's (tests/conftest.py), so an export made before is found.
    result = captionbot(["model", "export-encoder", "--model", str(service_model_bundle)], DATA_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    path = Path(result.stdout.strip())
    assert path.suffix == ".onnx" and path.is_file() and path.with_suffix(".json").is_file()
    assert not [chatter for chatter in TENSORFLOW_CHATTER if chatter in result.stderr], result.stderr


def test_an_unreadable_image_is_one_line_and_the_others_are_still_captioned(tmp_path, service_model_bundle):
    good, not_an_image = tmp_path / "good.jpg", tmp_path / "notes.jpg"
    good.write_bytes(jpeg_bytes(seed=62))
    not_an_image.write_text("shopping list: milk, bread")

    result = captionbot(["caption", str(not_an_image), str(good), str(tmp_path / "missing.jpg")],
                        DATA_DIR=str(tmp_path), MODEL_DIR=str(service_model_bundle))

    assert result.returncode == 1
    assert stderr_lines(result) == [
        f"captionbot caption: {not_an_image}: cannot caption it (this file is not an image I can read)",
        f"captionbot caption: {tmp_path / 'missing.jpg'}: cannot read it (No such file or directory)",
    ]
    assert result.stdout.startswith(f"{good}: ") and len(result.stdout.splitlines()) == 1


def test_a_missing_model_is_one_line(tmp_path):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(jpeg_bytes(seed=63))

    result = captionbot(["caption", str(photo)], DATA_DIR=str(tmp_path), MODEL_DIR=str(tmp_path / "no-model"))

    assert result.returncode == 1
    assert stderr_lines(result) == [
        f"captionbot caption: no model bundle at {tmp_path / 'no-model'} (no config.json there): set MODEL_DIR or pass --model"
    ]


def test_a_setting_that_does_not_parse_is_one_line_naming_it(tmp_path):
    result = captionbot(["models"], SANDBOX_PORT="eighty", DATA_DIR=str(tmp_path))

    assert result.returncode == 2
    [line] = stderr_lines(result)
    assert line.startswith("captionbot: SANDBOX_PORT='eighty' is not a valid setting: ")
