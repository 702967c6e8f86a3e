"""Admin commands for model versions: /retrain, /models and /rollback.

/models lists every version with its val scores and what users said of its captions (served,
👍 share with its 95 % interval, share corrected); /report has the full picture.

/retrain takes the one-run-at-a-time lock, answers at once and queues the trainer's job with the
id of that answer, which the trainer then edits with its progress; a /retrain while a run is
queued or running says so and queues nothing. /rollback ends a running canary (bot.canary_admin),
or else makes the previously active version active again (or `/rollback VERSION` any finished
one, which ends a canary too); workers switch before their next job.
"""
from __future__ import annotations

import asyncio
import html
import logging
from dataclasses import dataclass

from redis.exceptions import RedisError
from telegram import Update
from telegram.constants import ParseMode
from telegram.ext import ContextTypes

from bot import replies
from bot.admin import admins_only
from bot.state import runtime_of
from service.canary import end_canary
from service.feedback_evaluation import evaluate_versions
from service.model_versions import (
    ActivationError,
    activate,
    ensure_active_version,
    format_versions,
    rollback_target,
    served_versions,
    version_rows,
)
from service.retrain_lock import RetrainLock
from service.runtime import REDIS_OUTAGES, Runtime
from store.db import session_scope
from store.outages import first_line
from store.queries import active_model_version

log = logging.getLogger(__name__)
RETRAIN_JOB = "worker.retraining.retrain"
RETRAIN_FAILURE_CALLBACK = "worker.retraining.report_retrain_failure"


@admins_only
async def retrain(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    runtime = runtime_of(context)
    admin = update.effective_user.id
    token, holder = await asyncio.to_thread(take_retrain_lock, runtime, admin)
    if token is None:
        await update.effective_message.reply_text(busy_text(holder))
        return
    try:
        answer = await update.effective_message.reply_text(replies.RETRAIN_QUEUED.format(job_id=retrain_job_id(token)))
    except BaseException:  # nothing queued: the next /retrain must not be told one is
        await asyncio.to_thread(_release_quietly, runtime, token)
        raise
    try:
        await asyncio.to_thread(enqueue_retrain, runtime, admin, answer.chat_id, answer.message_id, token)
    except REDIS_OUTAGES as error:
        log.warning("could not queue the retraining: %s; the admin is told", first_line(error))
        await asyncio.to_thread(_release_quietly, runtime, token)
        await answer.edit_text(replies.RETRAIN_NOT_QUEUED)


@admins_only
async def models(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    table = await asyncio.to_thread(describe_versions, runtime_of(context))
    await update.effective_message.reply_text(f"<pre>{html.escape(table)}</pre>", parse_mode=ParseMode.HTML)


@admins_only
async def rollback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    wanted = context.args[0] if context.args else None
    await update.effective_message.reply_text(await asyncio.to_thread(roll_back, runtime_of(context), wanted))


def retrain_job_id(token: str) -> str:
    return f"retrain-{token[:12]}"


def take_retrain_lock(runtime: Runtime, admin: int) -> tuple[str | None, dict | None]:
    """(token, None) if this run may be queued, else (None, what holds the lock)."""
    lock = RetrainLock(runtime.redis)
    token = lock.acquire(runtime.settings.retrain_queue_ttl_s, requested_by=admin)
    return (token, None) if token else (None, lock.holder())


def busy_text(holder: dict | None) -> str:
    holder = holder or {}
    progress = holder.get("progress")
    return replies.RETRAIN_BUSY.format(
        state="running" if holder.get("state") == "running" else "queued",
        requested_by=holder.get("requested_by", "someone"),
        since=str(holder.get("since", "?"))[11:16],
        progress=f"; now: {progress}" if progress else "",
    )


def enqueue_retrain(runtime: Runtime, admin: int, chat_id: int, message_id: int, token: str) -> str:
    """Queue the trainer's job; it may wait as long as the lock says it is queued, no longer."""
    from rq import Callback

    settings = runtime.settings
    job = runtime.training_queue.enqueue(
        RETRAIN_JOB,
        admin,
        chat_id,
        message_id,
        token,
        job_id=retrain_job_id(token),
        description=f"retrain requested by {admin}",
        job_timeout=settings.retrain_timeout_s,
        ttl=settings.retrain_queue_ttl_s,
        on_failure=Callback(RETRAIN_FAILURE_CALLBACK),
        result_ttl=7 * 24 * 3600,
        failure_ttl=7 * 24 * 3600,
    )
    return job.id


def _release_quietly(runtime: Runtime, token: str) -> None:
    try:
        RetrainLock(runtime.redis).release(token)
    except RedisError:  # it expires by itself
        pass


def describe_versions(runtime: Runtime) -> str:
    with session_scope(runtime.session_factory) as session:
        ensure_active_version(session, runtime.settings.model_dir)
        feedback = {evaluation.version: evaluation for evaluation in evaluate_versions(session)}
    return format_versions(version_rows(runtime.session_factory), served_versions(runtime.redis), feedback)


@dataclass(frozen=True)
class Switch:
    version: str
    previous: str | None


def roll_back(runtime: Runtime, wanted: str | None) -> str:
    """End the running canary; or activate `wanted` (which ends a canary too), or the version
    active before the current one. Returns the answer."""
    try:
        with session_scope(runtime.session_factory) as session:
            if wanted is None:
                ended = end_canary(session, notes="rolled back by an admin")
                if ended is not None:
                    return replies.CANARY_ENDED.format(version=ended, active=active_model_version(session).version)
                target = rollback_target(session)
                if target is None:
                    return replies.NOTHING_TO_ROLL_BACK
                wanted = target.version
            model, previous = activate(session, wanted)
            switch = Switch(model.version, previous)
    except ActivationError as error:
        return replies.ACTIVATION_REFUSED.format(reason=str(error).rstrip("."))
    if switch.previous is None:
        return replies.ALREADY_ACTIVE.format(version=switch.version)
    log.info("model %s activated by an admin (was %s)", switch.version, switch.previous)
    return replies.ROLLED_BACK.format(version=switch.version, previous=switch.previous)
