"""Updates from different users are handled at once; one user's updates one at a time, in order.

A /forget sent right after a photo must find that photo's request: handled side by side, the
photo's insert could land after the deletion and its request, file and caption would stay.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

from bot import metrics


class PerUserUpdateProcessor(BaseUpdateProcessor):
    """Like PTB's SimpleUpdateProcessor, plus a lock per user (asyncio locks are first come, first served)."""

    def __init__(self, max_concurrent_updates: int) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, asyncio.Lock] = {}
        self._holders: dict[int, int] = {}  # updates using each lock, so idle users' locks go

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        user = update.effective_user if isinstance(update, Update) else None
        if user is None:
            await _timed(update, coroutine)
            return
        lock = self._locks.setdefault(user.id, asyncio.Lock())
        self._holders[user.id] = self._holders.get(user.id, 0) + 1
        try:
            async with lock:
                await _timed(update, coroutine)
        finally:
            self._holders[user.id] -= 1
            if self._holders[user.id] == 0:
                del self._holders[user.id], self._locks[user.id]

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to free."""


async def _timed(update: object, coroutine: Awaitable[Any]) -> None:
    """Count the update by kind and time its handlers (not its wait for the user's lock)."""
    kind = metrics.update_kind(update)
    metrics.UPDATES.labels(kind).inc()
    started = time.perf_counter()
    try:
        await coroutine
    finally:
        metrics.HANDLER_SECONDS.labels(kind).observe(time.perf_counter() - started)
