"""/healthz and /readyz of the real bot and of real `captionbot worker` processes (METRICS_PORT).

A worker's model is held back by making its vocab.json a named pipe: loading blocks on it until
the test writes the vocabulary, so "not ready while the model loads" is seen without a race.
"""
from __future__ import annotations

import json
import os
import shutil
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from service_stack import free_port, service_stack, wait_until


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:  # not listening yet
        return 0, ""


def wait_for_status(port: int, path: str, status: int, timeout: float = 120.0) -> str:
    return wait_until(lambda: (lambda got: got[1] if got[0] == status else None)(get(port, path)) or None,
                      timeout=timeout, what=f"{path} on port {port} to answer {status}", interval=0.2)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, service_model_bundle):
    with service_stack(tmp_path_factory.mktemp("health"), service_model_bundle) as stack:
        yield stack


def held_back_bundle(bundle: Path, directory: Path) -> tuple[Path, threading.Thread]:
    """A copy of the bundle whose vocab.json is a pipe, and the thread that releases it when started."""
    shutil.copytree(bundle, directory)
    vocab = directory / "vocab.json"
    real_vocab = directory / "vocab.real.json"
    vocab.rename(real_vocab)
    os.mkfifo(vocab)

    def release() -> None:
        with open(vocab, "w", encoding="utf-8") as pipe:  # waits for the worker to open it
            # Any later read finds the plain file; this one reads the pipe it opened.
            shutil.copyfile(real_vocab, directory / "vocab.tmp")
            os.replace(directory / "vocab.tmp", vocab)
            pipe.write(real_vocab.read_text(encoding="utf-8"))

    return directory, threading.Thread(target=release, daemon=True)


def test_a_caption_worker_is_up_but_not_ready_until_its_model_has_loaded(stack, service_model_bundle, tmp_path):
    model_dir, release = held_back_bundle(service_model_bundle, tmp_path / "bundle")
    port = free_port()
    stack.start_worker("held-back", METRICS_PORT=str(port), MODEL_DIR=str(model_dir))
    try:
        assert wait_for_status(port, "/healthz", 200) == "ok\n"
        status, body = get(port, "/readyz")
        assert status == 503
        assert json.loads(body) == {"ready": False, "checks": {"model": "loading", "redis": "ok"}}
        release.start()
        ready = json.loads(wait_for_status(port, "/readyz", 200))
        assert ready == {"ready": True, "checks": {"redis": "ok", "database": "ok"}}
    finally:
        stack.stop_worker("held-back")
        if release.ident is not None:
            release.join(timeout=5)


def test_a_trainer_is_ready_once_redis_and_the_database_answer(stack):
    port = free_port()
    stack.start_worker("trainer-health", queues=("training",), METRICS_PORT=str(port))
    try:
        ready = json.loads(wait_for_status(port, "/readyz", 200))
        assert ready["checks"] == {"redis": "ok", "database": "ok"}
    finally:
        stack.stop_worker("trainer-health")


def test_a_worker_whose_redis_is_gone_is_alive_but_not_ready(stack):
    port = free_port()
    stack.start_worker("outage-health", queues=("training",), METRICS_PORT=str(port))
    try:
        wait_for_status(port, "/readyz", 200)
        stack.redis_server.stop()
        body = json.loads(wait_for_status(port, "/readyz", 503, timeout=30))
        assert body["checks"]["redis"] != "ok" and body["checks"]["database"] == "ok"
        assert get(port, "/healthz") == (200, "ok\n")
        stack.redis_server.start()
        wait_for_status(port, "/readyz", 200, timeout=60)
    finally:
        stack.stop_worker("outage-health")


def test_the_bot_answers_healthz_and_readyz_and_names_what_it_checks(stack):
    port = free_port()
    stack.start_bot(metrics_port=port)
    assert get(port, "/healthz") == (200, "ok\n")
    status, body = get(port, "/readyz")
    assert status == 200
    assert json.loads(body) == {"ready": True, "checks": {"redis": "ok", "database": "ok"}}
    assert get(port, "/nothing-here")[0] == 404
