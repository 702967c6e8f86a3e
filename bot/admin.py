"""Admin commands (ADMIN_IDS): /stats and /model (model_admin and report have the rest). Everyone else is politely refused."""
from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

from rq import Worker
from telegram import Update
from telegram.ext import ContextTypes

from bot import replies
from bot.state import runtime_of
from service.model_versions import headline_scores
from service.runtime import QUEUE_NAMES, Runtime
from store.db import session_scope
from store.queries import active_model_version, service_stats

log = logging.getLogger(__name__)
Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]]


def admins_only(handler: Handler) -> Handler:
    @wraps(handler)
    async def guarded(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.effective_user.id not in runtime_of(context).settings.admin_ids:
            log.info("refused /%s to non-admin %s", handler.__name__, update.effective_user.id)
            await update.effective_message.reply_text(replies.ADMINS_ONLY)
            return
        await handler(update, context)

    return guarded


@admins_only
async def stats(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    numbers = await asyncio.to_thread(collect_stats, runtime_of(context))
    await update.effective_message.reply_text(format_stats(numbers))


@admins_only
async def model(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    description = await asyncio.to_thread(describe_model, runtime_of(context))
    await update.effective_message.reply_text(description)


def live_workers(runtime: Runtime) -> int:
    """Registered workers whose heartbeat key has not expired (a killed one drops out)."""
    keys = Worker.all_keys(connection=runtime.redis)
    return sum(1 for key in keys if runtime.redis.exists(key))


def collect_stats(runtime: Runtime) -> dict[str, Any]:
    with session_scope(runtime.session_factory) as session:
        numbers = service_stats(session)
        active = active_model_version(session)
        numbers["model_version"] = active.version if active else bundle_version(runtime)
    # Queue lengths only: reading RQ's registries here would run their cleanup in the bot.
    numbers["queue_depth"] = {name: runtime.queue(name).count for name in QUEUE_NAMES}
    numbers["live_workers"] = live_workers(runtime)
    return numbers


def bundle_version(runtime: Runtime) -> str | None:
    """The version named in the default bundle's config.json (read as JSON: no model loaded here)."""
    config = runtime.settings.model_dir / "config.json"
    try:
        return str(json.loads(config.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def _percent(share: float | None) -> str:
    return "–" if share is None else f"{share:.0%}"


def format_stats(numbers: dict[str, Any]) -> str:
    latency = numbers.get("median_latency_ms")
    depth = numbers["queue_depth"]
    return "\n".join(
        [
            f"Requests: {numbers['requests']} ({numbers['done']} done, {numbers['failed']} failed)",
            f"Success rate: {_percent(numbers['success_rate'])}",
            f"Median latency: {'–' if latency is None else f'{latency:.0f} ms'}",
            f"👍 share: {_percent(numbers['up_share'])}",
            "Queue depth: " + ", ".join(f"{name} {count}" for name, count in depth.items()),
            f"Live workers: {numbers['live_workers']}",
            f"Active model: {numbers['model_version'] or 'none'}",
        ]
    )


def describe_model(runtime: Runtime) -> str:
    with session_scope(runtime.session_factory) as session:
        active = active_model_version(session)
        if active is not None:
            bleu4, cider = headline_scores(active.metrics or {})
            metrics = "" if bleu4 is None else f"val BLEU-4 {bleu4:.3f}, CIDEr {cider:.3f}"
            activated = active.activated_at.strftime("%Y-%m-%d %H:%M UTC") if active.activated_at else "?"
            return (
                f"Active model: version {active.version} ({active.encoder})\n"
                f"Activated: {activated}\nMetrics: {metrics or 'none recorded'}\nPath: {active.path}"
            )
    version = bundle_version(runtime)
    return f"No trained version is registered yet; workers serve the bundle at {runtime.settings.model_dir}" + (
        f" (version {version})." if version else "."
    )
