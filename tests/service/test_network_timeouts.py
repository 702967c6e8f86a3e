"""Every network client the service makes gives up on a server that never answers: Redis, the
workers' Bot API client, the bot's python-telegram-bot requests and the sandbox client."""
from __future__ import annotations

import asyncio

import pytest
import redis
from tcp_gate import Blackhole

from service.runtime import connect, redis_from_url
from service.settings import Settings


@pytest.fixture
def hole():
    with Blackhole() as blackhole:
        yield blackhole


def test_a_redis_client_times_out_on_a_server_that_never_answers(hole):
    client = redis_from_url(f"redis://127.0.0.1:{hole.port}/0", timeout_s=0.5)
    with pytest.raises(redis.TimeoutError):
        client.ping()
    client.close()


def test_the_workers_bot_api_client_reports_a_silent_telegram_as_unavailable(hole):
    from worker.bot_api import BotApiClient, BotApiUnavailable

    client = BotApiClient(f"http://127.0.0.1:{hole.port}", "1:test", timeout_s=0.5, connect_timeout_s=0.5)
    with pytest.raises(BotApiUnavailable, match="Timeout"):
        client.download_file("some-file", max_bytes=1024)
    client.close()


def test_the_bots_requests_time_out_on_a_silent_bot_api(hole, tmp_path):
    from telegram.error import TimedOut

    from bot.application import build_application

    settings = Settings(
        _env_file=None, telegram_token="1:test", telegram_api_url=f"http://127.0.0.1:{hole.port}",
        http_timeout_s=0.5, http_connect_timeout_s=0.5, redis_url="redis://127.0.0.1:1/0",
        database_url=f"sqlite:///{tmp_path / 'captionbot.db'}",
    )
    runtime = connect(settings)
    application = build_application(settings, runtime)

    async def ask() -> None:
        async with application.bot:
            await application.bot.get_me()

    try:
        with pytest.raises(TimedOut):
            asyncio.run(ask())
    finally:
        runtime.close()


def test_the_sandbox_client_times_out_on_a_silent_server(hole):
    import httpx

    from sandbox.client import SandboxClient

    with SandboxClient(f"http://127.0.0.1:{hole.port}", timeout=0.5, connect_timeout=0.5) as client:
        with pytest.raises(httpx.TimeoutException):
            client.messages(1)
