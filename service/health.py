"""Readiness of one process: named checks (Redis answers, the database answers) and conditions
still awaited (the model is loading), read by `/readyz`.

A check is a plain callable that raises when its dependency does not answer; the first line of
its error is the reason shown. A process is ready when nothing is awaited and every check passes.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from redis import Redis
from sqlalchemy import Engine, text

Check = Callable[[], object]


@dataclass(frozen=True)
class ReadinessReport:
    ready: bool
    checks: dict[str, str]  # name → "ok", or why not


class Readiness:
    """What `/readyz` answers; the process adds checks and marks what it still waits for."""

    def __init__(self) -> None:
        self._checks: dict[str, Check] = {}
        self._awaited: dict[str, str] = {}
        self._lock = threading.Lock()

    def add_check(self, name: str, check: Check) -> None:
        with self._lock:
            self._checks[name] = check

    def await_condition(self, name: str, reason: str) -> None:
        """Not ready until `satisfied(name)`: e.g. ("model", "loading")."""
        with self._lock:
            self._awaited[name] = reason

    def satisfied(self, name: str) -> None:
        with self._lock:
            self._awaited.pop(name, None)

    def report(self) -> ReadinessReport:
        with self._lock:
            checks, awaited = dict(self._checks), dict(self._awaited)
        results = dict(awaited)
        for name, check in checks.items():
            try:
                check()
            except Exception as error:  # any failure means "not ready", with its reason
                results[name] = (str(error).strip().splitlines() or [type(error).__name__])[0]
            else:
                results[name] = "ok"
        return ReadinessReport(ready=all(value == "ok" for value in results.values()), checks=results)


def redis_answers(redis: Redis) -> Check:
    return lambda: redis.ping()


def database_answers(engine: Engine) -> Check:
    def ping() -> None:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    return ping
