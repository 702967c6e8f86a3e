"""`captionbot up`: the whole service on one machine, with nothing installed beforehand.

A SQLite file and an embedded Redis in data_dir (unless DATABASE_URL / REDIS_URL say otherwise),
migrations applied, then three child processes: a caption worker, a trainer worker and the bot,
each restarted if it dies (captionbot.supervisor). Without TELEGRAM_TOKEN the local sandbox Bot API
runs here and its chat page address is printed. Ctrl-C (or SIGTERM) stops the children, waits for
them, then stops Redis and the sandbox.
"""
from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from service.runtime import CAPTIONS_QUEUE, TRAINING_QUEUE, resolve_redis_url
from service.settings import Settings
from captionbot.supervisor import RestartPolicy, Supervisor

SANDBOX_TOKEN = "123456:sandbox"


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
            return supervise(child_commands(), env, restart_policy(settings))
    finally:
        if embedded is not None:
            embedded.close()


def restart_policy(settings: Settings) -> RestartPolicy:
    return RestartPolicy(restart_limit=settings.restart_limit, restart_window_s=settings.restart_window_s)


def supervise(commands: dict[str, list[str]], env: dict[str, str], policy: RestartPolicy) -> int:
    """Run the children until Ctrl-C or SIGTERM (0), restarting any that dies; 1 on a crash loop."""
    supervisor = Supervisor(commands, env, policy)
    # From here on a stop request is a flag, so it can never interrupt starting a child halfway.
    signal.signal(signal.SIGINT, supervisor.request_stop)
    signal.signal(signal.SIGTERM, supervisor.request_stop)
    return supervisor.run()
