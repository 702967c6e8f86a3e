"""`captionbot up`: the whole service on one machine, with nothing installed beforehand.

A SQLite file and an embedded Redis in data_dir (unless DATABASE_URL / REDIS_URL say otherwise),
migrations applied, then three child processes: a caption worker, a trainer worker and the bot.
Without TELEGRAM_TOKEN the local sandbox Bot API runs here and its chat page address is printed.
Ctrl-C (or SIGTERM) stops the children, waits for them, then stops Redis and the sandbox.
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from captionbot.runtime import CAPTIONS_QUEUE, TRAINING_QUEUE, resolve_redis_url
from captionbot.settings import Settings

log = logging.getLogger(__name__)
SANDBOX_TOKEN = "123456:sandbox"
STOP_GRACE_S = 20.0


@contextmanager
def sandbox_if_needed(settings: Settings) -> Iterator[dict[str, str]]:
    """Environment for the children: the real Bot API if a token is set, else a local sandbox."""
    if settings.telegram_token:
        yield {}
        return
    from sandbox.server import SandboxServer

    sandbox = SandboxServer(host=settings.sandbox_host, port=settings.sandbox_port, token=SANDBOX_TOKEN)
    sandbox.start()
    try:
        print(f"No TELEGRAM_TOKEN: chat with the bot in the sandbox at {sandbox.url}/", flush=True)
        yield {"TELEGRAM_TOKEN": SANDBOX_TOKEN, "TELEGRAM_API_URL": sandbox.url}
    finally:
        sandbox.stop()


def child_commands() -> dict[str, list[str]]:
    cli = [sys.executable, "-m", "captionbot.cli"]
    return {
        "caption worker": [*cli, "worker", "--queue", CAPTIONS_QUEUE],
        "trainer": [*cli, "worker", "--queue", TRAINING_QUEUE],
        "bot": [*cli, "bot"],
    }


def run_up(settings: Settings) -> int:
    from store.db import upgrade_database

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade_database(settings.resolved_database_url)
    redis_url, embedded = resolve_redis_url(settings)
    # Ctrl-C and SIGTERM both mean a clean stop (SIGINT may arrive ignored, e.g. from `cmd &`).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        with sandbox_if_needed(settings) as telegram_env:
            env = {
                **os.environ,
                **telegram_env,
                "REDIS_URL": redis_url,
                "DATABASE_URL": settings.resolved_database_url,
                "DATA_DIR": str(settings.data_dir),
            }
            return supervise(child_commands(), env)
    finally:
        if embedded is not None:
            embedded.close()


def supervise(commands: dict[str, list[str]], env: dict[str, str]) -> int:
    """Start the children and wait; if one dies, or on Ctrl-C, stop them all. Returns 0 on Ctrl-C."""
    children: dict[str, subprocess.Popen] = {}
    try:
        for name, command in commands.items():
            # A process group of its own: Ctrl-C reaches only this supervisor, which then stops
            # each child with exactly one SIGTERM (a second signal would make RQ abandon a job).
            children[name] = subprocess.Popen(command, env=env, process_group=0)
            log.info("started %s (pid %d)", name, children[name].pid)
        while True:
            for name, child in children.items():
                if child.poll() is not None:
                    log.error("%s exited with status %s; stopping everything", name, child.returncode)
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        log.info("stopping")
        return 0
    finally:
        stop_children(children)


def stop_children(children: dict[str, subprocess.Popen]) -> None:
    """SIGTERM (a worker finishes its current job), then SIGKILL whoever is still there."""
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for name, child in children.items():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in time; killing it", name)
            child.kill()
            child.wait()
