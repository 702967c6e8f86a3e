"""The bot token never reaches a log: every `captionbot` subcommand (and so `captionbot up`'s
children, which are `captionbot` subcommands too) logs through one setup that keeps httpx's
request lines out and redacts the token from every record."""
from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest
from service_stack import REPO_ROOT, free_port, wait_until

from captionbot import log_setup
from captionbot.cli import build_parser
from captionbot.one_machine import child_commands

TOKEN = "7123456789:AAH4d-example_TOKEN_value_for_tests_0123"
URL = f"https://api.telegram.org/bot{TOKEN}/getUpdates"


@pytest.fixture
def logging_restored():
    """The setup changes process-wide logging; later tests get it back as it was."""
    factory = logging.getLogRecordFactory()
    levels = {name: logging.getLogger(name).level for name in log_setup.QUIET_LOGGERS}
    yield
    logging.setLogRecordFactory(factory)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_the_token_is_redacted_from_messages_arguments_and_tracebacks_of_every_logger(logging_restored, caplog):
    log_setup.configure_logging([TOKEN])
    with caplog.at_level(logging.INFO):
        logging.getLogger("telegram.ext.Updater").info("polling %s", URL)
        logging.getLogger("some.module").warning(f"token is {TOKEN}")
        try:
            raise RuntimeError(f"could not reach {URL}")
        except RuntimeError:
            logging.getLogger("rq.worker").exception("job failed")
    text = caplog.text + "".join(record.getMessage() + (record.exc_text or "") for record in caplog.records)
    assert TOKEN not in text
    assert text.count(log_setup.REDACTED) >= 3
    assert f"/bot{log_setup.REDACTED}/getUpdates" in text


def test_a_token_shaped_url_is_redacted_even_when_no_token_is_configured(logging_restored, caplog):
    log_setup.configure_logging([])
    with caplog.at_level(logging.INFO):
        logging.getLogger("httpx").warning("HTTP Request: POST %s", URL)
    assert TOKEN not in caplog.text
    assert f"bot{log_setup.REDACTED}/getUpdates" in caplog.text


def test_httpx_request_lines_are_not_logged(logging_restored, caplog):
    log_setup.configure_logging([TOKEN])
    logging.getLogger().setLevel(logging.INFO)
    logging.getLogger("httpx").info("HTTP Request: POST %s", URL)
    logging.getLogger("httpcore").info("connect %s", URL)
    assert not [r for r in caplog.records if r.name in log_setup.QUIET_LOGGERS]


def test_every_subcommand_goes_through_main_and_up_starts_only_captionbot_subcommands():
    """main() sets logging up before it dispatches; `up`'s children run main() again."""
    subcommands = set(build_parser()._subparsers._group_actions[0].choices)
    assert {"up", "bot", "worker", "sandbox", "migrate", "train", "retrain", "models"} <= subcommands
    for command in child_commands().values():
        assert command[:3] == [sys.executable, "-m", "captionbot.cli"]


def run_captionbot(args: list[str], env: dict[str, str], seconds: float | None = None) -> str:
    """Run a subcommand at INFO; a long-running one is stopped with SIGTERM after `seconds`."""
    process = subprocess.Popen(
        [sys.executable, "-m", "captionbot.cli", *args], cwd=REPO_ROOT, env={**os.environ, **env},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        output, _ = process.communicate(timeout=seconds or 120)
    except subprocess.TimeoutExpired:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    return output


def test_the_bot_and_a_worker_talking_to_a_bot_api_never_log_the_token(tmp_path, redis_url):
    """The bot polls a sandbox that knows the token (at DEBUG, the most it logs); a trainer worker starts
    and stops; an `up`-style child environment. None of their output holds the token."""
    from sandbox.server import SandboxServer

    env = {
        "TELEGRAM_TOKEN": TOKEN,
        "REDIS_URL": redis_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'captionbot.db'}",
        "DATA_DIR": str(tmp_path),
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    assert "revision head" in run_captionbot(["migrate"], env)
    with SandboxServer(token=TOKEN) as sandbox:
        env["TELEGRAM_API_URL"] = sandbox.url
        bot_output = run_captionbot(["-v", "bot"], env, seconds=12)
        worker_output = run_captionbot(["worker", "--queue", "training", "--burst"], env)
    assert "bot polling" in bot_output and "getUpdates" in bot_output, bot_output[-2000:]
    assert "training" in worker_output, worker_output[-2000:]
    for output in (bot_output, worker_output):
        assert TOKEN not in output
        assert TOKEN.split(":")[1] not in output


def test_the_sandbox_subcommand_redacts_the_token_it_is_given_from_its_log(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "captionbot.cli", "sandbox", "--port", str(port), "--token", TOKEN],
        cwd=REPO_ROOT, env={**os.environ, "DATA_DIR": str(tmp_path)}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_until(lambda: _answers(f"http://127.0.0.1:{port}/bot{TOKEN}/getMe"), timeout=30, what="the sandbox")
    finally:
        process.terminate()
        _, log_output = process.communicate(timeout=30)
    assert "sandbox Bot API at" in log_output
    assert TOKEN not in log_output


def _answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
