"""Webhook mode: Telegram POSTs each update to a public URL, so the bot can run as several replicas
behind one load balancer (long polling allows one getUpdates consumer per token).

python-telegram-bot's own webhook server receives the POSTs; given `secret_token` it calls
setWebhook with it and answers 403 to any request whose X-Telegram-Bot-Api-Secret-Token header is
missing or different, before the update reaches a handler. Every replica must share the URL and
the secret: each one sets the webhook when it starts, and the last one to do so wins.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from telegram import Update

from service.settings import Settings


class WebhookSettingsError(ValueError):
    """The webhook settings cannot work; the message names the variable to fix."""


@dataclass(frozen=True)
class WebhookOptions:
    """Where this replica listens and what it registers with Telegram."""

    url: str  # the public URL Telegram (or the proxy in front) sends updates to
    secret_token: str
    listen: str
    port: int

    @property
    def url_path(self) -> str:
        """The path this replica serves: the public URL's, which the proxy forwards unchanged."""
        return urlsplit(self.url).path.strip("/")

    def start_webhook_kwargs(self) -> dict[str, Any]:
        """Arguments of Application.run_webhook and Updater.start_webhook (both take the same)."""
        return {
            "listen": self.listen,
            "port": self.port,
            "url_path": self.url_path,
            "webhook_url": self.url,
            "secret_token": self.secret_token,
            "allowed_updates": Update.ALL_TYPES,
            # A replica that restarts must not throw away updates the others have not seen yet.
            "drop_pending_updates": False,
        }


def webhook_options(settings: Settings) -> WebhookOptions | None:
    """The webhook this bot serves, or None to long-poll; raises WebhookSettingsError if unusable."""
    url = settings.telegram_webhook_url
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookSettingsError(f"TELEGRAM_WEBHOOK_URL={url!r} is not an http(s) URL with a host")
    if parts.query or parts.fragment:
        raise WebhookSettingsError(f"TELEGRAM_WEBHOOK_URL={url!r} must not have a query or fragment")
    if not settings.telegram_webhook_secret:
        raise WebhookSettingsError(
            "webhook mode needs TELEGRAM_WEBHOOK_SECRET (the same on every replica), so that only "
            "Telegram's requests are handled"
        )
    return WebhookOptions(url=url, secret_token=settings.telegram_webhook_secret,
                          listen=settings.telegram_webhook_listen, port=settings.telegram_webhook_port)
