"""What setWebhook registered, where each update went, and the replicas the sandbox spreads
updates over in turn, standing in for the load balancer in front of several bot replicas."""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

# Telegram's limits on setWebhook's secret_token and max_connections.
SECRET_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,256}")
MAX_CONNECTIONS_RANGE = (1, 100)
DEFAULT_MAX_CONNECTIONS = 40


@dataclass
class WebhookRegistration:
    """The bot's webhook (none while url is empty) and the sandbox's record of its deliveries."""

    url: str = ""
    secret_token: str | None = None
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    replicas: list[str] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    last_error_date: int | None = None
    last_error_message: str | None = None
    _turn: int = 0

    @property
    def active(self) -> bool:
        return bool(self.url)

    def set(self, url: str, secret_token: str | None, max_connections: int) -> None:
        self.url, self.secret_token, self.max_connections = url, secret_token, max_connections
        self.last_error_date = self.last_error_message = None

    def delete(self) -> None:
        """deleteWebhook: the replicas stay, as a load balancer outlives the bot's registration."""
        self.set("", None, DEFAULT_MAX_CONNECTIONS)

    def next_target(self) -> str:
        """The registered URL, or with replicas set, the next replica in turn (round-robin)."""
        if not self.replicas:
            return self.url
        target = self.replicas[self._turn % len(self.replicas)]
        self._turn += 1
        return target

    def record(self, update_id: int, target: str, status: int | None, error: str | None) -> None:
        """One attempt: status is the HTTP status, None when no answer came (then error says why)."""
        self.deliveries.append({"update_id": update_id, "url": target, "status": status,
                                "error": error, "date": time.time()})
        if error is not None:
            self.last_error_date = int(time.time())
            self.last_error_message = error

    def info(self, pending_update_count: int, allowed_updates: list[str] | None) -> dict[str, Any]:
        """getWebhookInfo's WebhookInfo."""
        info: dict[str, Any] = {"url": self.url, "has_custom_certificate": False,
                                "pending_update_count": pending_update_count}
        if self.active:
            info["max_connections"] = self.max_connections
            if allowed_updates:
                info["allowed_updates"] = list(allowed_updates)
        if self.last_error_date is not None:
            info["last_error_date"] = self.last_error_date
            info["last_error_message"] = self.last_error_message
        return info
