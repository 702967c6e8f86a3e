"""Webhook settings: `captionbot bot --webhook URL` or TELEGRAM_WEBHOOK_URL; settings that cannot
work (no secret, a secret Telegram refuses, a URL that is not http(s)) stop the bot in one line
before it connects to anything, and an empty variable (as compose passes it) means polling."""
from __future__ import annotations

import pytest

from bot.webhook import WebhookSettingsError, webhook_options
from service.settings import Settings
from test_cli_messages import captionbot, stderr_lines

SECRET = "a-long_secret-0123456789"


def settings(**values) -> Settings:
    return Settings(_env_file=None, telegram_token="1:x", **values)


def test_the_webhook_serves_the_public_urls_path_with_the_secret_and_keeps_pending_updates():
    options = webhook_options(settings(telegram_webhook_url="https://bots.example/telegram/hook",
                                       telegram_webhook_secret=SECRET, telegram_webhook_port=8443))
    kwargs = options.start_webhook_kwargs()
    assert kwargs["url_path"] == "telegram/hook" and kwargs["webhook_url"] == "https://bots.example/telegram/hook"
    assert kwargs["secret_token"] == SECRET and kwargs["port"] == 8443 and kwargs["listen"] == "0.0.0.0"
    assert kwargs["drop_pending_updates"] is False


def test_an_empty_webhook_url_means_long_polling():
    assert webhook_options(settings(telegram_webhook_url="", telegram_webhook_secret="")) is None


@pytest.mark.parametrize("url", ["bots.example/hook", "ftp://bots.example/hook", "https://bots.example/hook?x=1"])
def test_a_webhook_url_that_cannot_be_served_is_refused_naming_the_variable(url):
    with pytest.raises(WebhookSettingsError, match="TELEGRAM_WEBHOOK_URL"):
        webhook_options(settings(telegram_webhook_url=url, telegram_webhook_secret=SECRET))


def test_the_bot_with_a_webhook_but_no_secret_stops_in_one_line_naming_the_secret(tmp_path):
    result = captionbot(["bot", "--webhook", "https://bots.example/hook"], TELEGRAM_TOKEN="1:x",
                        DATA_DIR=str(tmp_path / "data"))

    assert result.returncode == 2
    [line] = stderr_lines(result)
    assert "TELEGRAM_WEBHOOK_SECRET" in line and "Traceback" not in result.stderr
    assert not (tmp_path / "data" / "captionbot.db").exists(), "nothing connects before the settings hold"


def test_an_empty_webhook_argument_is_refused_rather_than_polling(tmp_path):
    result = captionbot(["bot", "--webhook", ""], TELEGRAM_TOKEN="1:x", TELEGRAM_WEBHOOK_SECRET=SECRET,
                        DATA_DIR=str(tmp_path / "data"))

    assert result.returncode == 2
    assert "--webhook needs the public URL" in result.stderr and "Traceback" not in result.stderr


def test_a_secret_telegram_would_refuse_is_a_settings_error_naming_the_variable_not_the_value(tmp_path):
    result = captionbot(["bot"], TELEGRAM_TOKEN="1:x", TELEGRAM_WEBHOOK_SECRET="not a secret!",
                        DATA_DIR=str(tmp_path / "data"))

    assert result.returncode == 2
    [line] = stderr_lines(result)
    assert line.startswith("captionbot: TELEGRAM_WEBHOOK_SECRET=<hidden> is not a valid setting")
    assert "not a secret!" not in result.stderr


def test_the_webhook_secret_is_redacted_from_the_log_like_the_token(monkeypatch):
    from captionbot.log_setup import TokenRedactor, configured_tokens
    from service.settings import get_settings

    monkeypatch.setenv("TELEGRAM_TOKEN", "123:abc")
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", SECRET)
    get_settings.cache_clear()
    try:
        tokens = configured_tokens()
    finally:
        get_settings.cache_clear()
    assert SECRET not in TokenRedactor(tokens).redact(f"setWebhook secret_token={SECRET}")
