"""Encoders exported to ONNX once per weights and kept in a folder (captioning/encoder_files.py):
a second load reads the file, a fine-tuned top gets its own, a damaged file is exported again,
and a runtime that cannot be set up leaves the encoder in TensorFlow."""
from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from encoder_top_bundles import write_fine_tuned_bundle

from captioning.captioner import Captioner
from captioning.encoder_files import cached_onnx, encoder_key, file_sha256
from captioning.encoder_runtimes import ExportedEncoder
from captioning.encoders import ImageEncoder, build_encoder
from captioning.testing import write_random_bundle

ENCODER = "efficientnet_lite0"
pytestmark = pytest.mark.slow


def photos(count: int = 3) -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, (count, 224, 224, 3), dtype=np.uint8)


def exports(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("exported encoder")]


@pytest.fixture(scope="module")
def cache_dir() -> Path:
    """The run's folder of exported encoders (tests/conftest.py): what other tests exported is
    found there, as a worker would find it, so each encoder is exported once per run."""
    return Path(os.environ["ENCODER_CACHE_DIR"])


@pytest.fixture(scope="module")
def plain_bundle(tmp_path_factory) -> Path:
    return write_random_bundle(tmp_path_factory.mktemp("plain") / "bundle", ENCODER)


@pytest.fixture(autouse=True)
def info_logs(caplog):
    caplog.set_level(logging.INFO, logger="captioning")


def onnx_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.onnx"))


def test_two_loads_of_a_bundle_export_at_most_once_and_the_second_reads_the_file(plain_bundle, cache_dir, caplog):
    first = Captioner.load(plain_bundle, encoder_runtime="onnxruntime", encoder_cache_dir=cache_dir)
    assert isinstance(first.encoder, ExportedEncoder)
    path = cache_dir / f"{ENCODER}-{encoder_key(first.encoder)}.onnx"
    before = path.stat()
    assert len(exports(caplog)) <= 1  # none if an earlier test of the run exported this encoder
    exported = len(exports(caplog))
    second = Captioner.load(plain_bundle, encoder_runtime="onnxruntime", encoder_cache_dir=cache_dir)
    assert len(exports(caplog)) == exported  # no second export
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    manifest = json.loads(path.with_suffix(".json").read_text())
    assert manifest["key"] == encoder_key(first.encoder)
    assert manifest["sha256"] == file_sha256(path) and manifest["bytes"] == after.st_size
    assert {"tf2onnx", "opset"} <= manifest.keys()
    pixels = photos()
    np.testing.assert_array_equal(first.encoder.encode(pixels)[0], second.encoder.encode(pixels)[0])


def test_a_fine_tuned_top_gets_a_file_of_its_own_that_runs_it(plain_bundle, cache_dir, tmp_path):
    bundle, _ = write_fine_tuned_bundle(tmp_path / "fine-tuned", ENCODER)
    plain = Captioner.load(plain_bundle, encoder_runtime="onnxruntime", encoder_cache_dir=cache_dir)
    fine_tuned = Captioner.load(bundle, encoder_runtime="onnxruntime", encoder_cache_dir=cache_dir)
    assert isinstance(fine_tuned.encoder, ExportedEncoder)
    files = {cache_dir / f"{ENCODER}-{encoder_key(c.encoder)}.onnx" for c in (plain, fine_tuned)}
    assert len(files) == 2 and all(path.is_file() for path in files)
    tensorflow = Captioner.load(bundle)  # the fine-tuned encoder in TensorFlow
    pixels = photos()
    assert np.abs(fine_tuned.encoder.encode(pixels)[0] - tensorflow.encoder.encode(pixels)[0]).max() <= 1e-3


def test_a_damaged_file_is_exported_again_once_by_two_loads_that_start_together(cache_dir, caplog):
    encoder = build_encoder(ENCODER)
    path = cached_onnx(encoder, cache_dir)
    caplog.clear()
    with open(path, "r+b") as file:  # same size, other bytes
        file.seek(path.stat().st_size // 2)
        file.write(b"\0" * 64)
    paths: list[Path] = []
    threads = [threading.Thread(target=lambda: paths.append(cached_onnx(encoder, cache_dir))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert paths == [path, path]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "does not match its manifest" in r.getMessage()]
    assert len(warnings) == 1, "the second load waits for the first one's export and finds the file whole"
    assert len(exports(caplog)) == 1
    assert file_sha256(path) == json.loads(path.with_suffix(".json").read_text())["sha256"]


def test_a_cache_folder_that_cannot_be_made_leaves_the_encoder_in_tensorflow(plain_bundle, tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")  # even root cannot make a folder inside a file
    captioner = Captioner.load(plain_bundle, encoder_runtime="onnxruntime", encoder_cache_dir=blocker / "encoders")
    assert type(captioner.encoder) is ImageEncoder
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name.startswith("captioning")]
    assert "onnxruntime unavailable, running the encoder in TensorFlow" in warning and str(blocker) in warning
    expected = Captioner.load(plain_bundle).caption_pixels(photos())
    assert [r.text for r in captioner.caption_pixels(photos())] == [r.text for r in expected]
