"""`captionbot up`: the whole service on one machine, with nothing installed beforehand.

A SQLite file and an embedded Redis in data_dir (unless DATABASE_URL / REDIS_URL say otherwise),
migrations applied, then three child processes: a caption worker, a trainer worker and the bot,
each restarted if it dies (captionbot.supervisor). Without TELEGRAM_TOKEN the local sandbox Bot API
runs here. "ready", with the chat page's address, is printed once a caption worker listens
(captionbot.readiness). Ctrl-C (or SIGTERM) stops the children, waits for them, then stops Redis
and the sandbox.
"""
from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from captionbot.readiness import ReadyAnnouncement
from captionbot.sandbox_start import start_sandbox
from captionbot.supervisor import RestartPolicy, Supervisor
from service.runtime import CAPTIONS_QUEUE, TRAINING_QUEUE, redis_from_url, resolve_redis_url
from service.settings import Settings

SANDBOX_TOKEN = "123456:sandbox"


@contextmanager
def sandbox_if_needed(settings: Settings) -> Iterator[tuple[dict[str, str], str]]:
    """(environment for the children, the "ready" line): the real Bot API if a token is set, else
    a local sandbox."""
    if settings.telegram_token:
        yield {}, "ready: the bot answers on Telegram"
        return
    sandbox = start_sandbox(settings.sandbox_host, settings.sandbox_port, SANDBOX_TOKEN)
    try:
        print("No TELEGRAM_TOKEN: starting the bot on the local sandbox Bot API; its chat page address "
              "follows once a caption worker is ready", flush=True)
        yield ({"TELEGRAM_TOKEN": SANDBOX_TOKEN, "TELEGRAM_API_URL": sandbox.url},
               f"ready: chat with the bot in the sandbox at {sandbox.url}/")
    finally:
        sandbox.stop()


def child_commands(verbose: bool = False, metrics_port: int = 0) -> dict[str, list[str]]:
    """The three children; with METRICS_PORT set, the bot serves /metrics on it and the caption
    worker and the trainer on the next two ports, so the three never ask for the same one."""
    cli = [sys.executable, "-m", "captionbot.cli", *(["-v"] if verbose else [])]

    def port(offset: int) -> list[str]:
        return ["--metrics-port", str(metrics_port + offset if metrics_port else 0)]

    return {
        "caption worker": [*cli, "worker", "--queue", CAPTIONS_QUEUE, *port(1)],
        "trainer": [*cli, "worker", "--queue", TRAINING_QUEUE, *port(2)],
        "bot": [*cli, "bot", *port(0)],
    }


def run_up(settings: Settings, verbose: bool = False) -> int:
    from captionbot.database import migrated_database_url

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrated_database_url(settings)
    # Ctrl-C and SIGTERM both mean a clean stop (SIGINT may arrive ignored, e.g. from `cmd &`).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    # The sandbox first: a busy port then stops `up` before anything else has started.
    with sandbox_if_needed(settings) as (telegram_env, ready_line):
        redis_url, embedded = resolve_redis_url(settings)
        redis = redis_from_url(redis_url, settings.redis_timeout_s)
        env = {
            **os.environ,
            **telegram_env,
            "REDIS_URL": redis_url,
            "DATABASE_URL": settings.resolved_database_url,
            "DATA_DIR": str(settings.data_dir),
        }
        try:
            ready = ReadyAnnouncement(redis, ready_line)
            return supervise(child_commands(verbose, settings.metrics_port), env, restart_policy(settings), on_step=ready)
        finally:
            # Its connections go first: the embedded server shuts down only when it is the last client.
            redis.connection_pool.disconnect()
            if embedded is not None:
                embedded.stop()  # ours: its clients were our children, and they have exited


def restart_policy(settings: Settings) -> RestartPolicy:
    return RestartPolicy(restart_limit=settings.restart_limit, restart_window_s=settings.restart_window_s)


def supervise(commands: dict[str, list[str]], env: dict[str, str], policy: RestartPolicy,
              on_step: Callable[[], None] | None = None) -> int:
    """Run the children until Ctrl-C or SIGTERM (0), restarting any that dies; 1 on a crash loop."""
    supervisor = Supervisor(commands, env, policy, on_step)
    # From here on a stop request is a flag, so it can never interrupt starting a child halfway.
    signal.signal(signal.SIGINT, supervisor.request_stop)
    signal.signal(signal.SIGTERM, supervisor.request_stop)
    return supervisor.run()
