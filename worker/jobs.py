"""The jobs workers run. They carry ids only (RQ's JSON serializer); the rest is in the database.

`caption_request`: download the photo through the Bot API, decode it safely, caption it, keep it
in the media store and store the caption (in one pass and two transactions with the photos queued
behind it, worker/caption_batch.py: their jobs find their captions stored), reply with the 👍 👎 ✏️
buttons, and only then mark the request done. A bad image ends the request at once with a clear message (no retry). Trouble
reaching Telegram raises, so rq.Retry tries again (a caption already stored is sent, not made
again); after the last try `report_caption_failure` ends the request failed and apologises.
A request forgotten (/forget) while in hand ends quietly and leaves no row and no file behind,
and its job in Redis keeps no chat id (the reply address it carried in its meta is dropped).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any

from redis import Redis
from rq.exceptions import AbandonedJobError
from rq.job import Job, get_current_job
from rq.timeouts import JobTimeoutException

from captioning.text import as_sentence
from service.feedback_buttons import feedback_keyboard
from service.runtime import REPLY_TO_META
from store.db import session_scope
from store.outages import DATABASE_OUTAGES, first_line
from store.models import RequestStatus
from store.queries import (
    get_request,
    mark_delivered,
    mark_failed,
    mark_running,
)
from worker import context as worker_context
from worker import metrics
from worker.bot_api import BotApiError, BotApiRejected, BotApiUnavailable
from worker.caption_batch import await_batch, caption_for, look_ahead
from worker.caption_store import RecordedCaption
from worker.photo_fetch import PhotoRefused

log = logging.getLogger(__name__)

FAILED_FOR_GOOD = "Sorry, I couldn't describe this photo: {reason}."
GAVE_UP = "Sorry, I couldn't describe this photo just now. Please send it again in a few minutes."
NOT_SENDABLE = "Telegram would not take my reply"
UNDELIVERABLE = "undeliverable"
FINISHED = (RequestStatus.done, RequestStatus.failed)


class RequestForgotten(Exception):
    """The user sent /forget while their request was in hand: stop, keep nothing, say nothing."""


@dataclass(frozen=True)
class PendingRequest:
    request_id: int
    chat_id: int
    message_id: int
    file_id: str
    created_at: datetime
    caption: RecordedCaption | None  # stored by an earlier try that could not deliver it


def caption_request(request_id: int) -> dict[str, Any]:
    """Caption one request end to end; returns a small summary (kept as the job's result)."""
    ctx = worker_context.current()
    job = get_current_job()
    if job is not None:
        metrics.observe_queue_wait(job.enqueued_at, job.started_at)
    try:
        with metrics.stage("job"):
            return _answer(ctx, request_id, job)
    except RequestForgotten:
        log.warning("request %s was forgotten (/forget) while in hand; nothing of it is kept", request_id)
        _drop_reply_address(job)
        metrics.request_ended("forgotten")
        return {"request_id": request_id, "status": "forgotten"}


def _drop_reply_address(job: Job | None) -> None:
    """The job of a forgotten request stays in Redis a while (its result, a failure): without the
    chat and message it carried, nothing in it says whose photo it was."""
    if job is not None and REPLY_TO_META in job.meta:
        del job.meta[REPLY_TO_META]
        job.save_meta()


def _answer(ctx: worker_context.WorkerContext, request_id: int, job: Job | None) -> dict[str, Any]:
    await_batch(request_id, ctx.settings.job_timeout_s)  # a look-ahead batch here may be storing its caption
    pending = _start(ctx, request_id)
    if pending is None:
        metrics.request_ended("skipped")
        return {"request_id": request_id, "status": "skipped"}
    try:
        caption = pending.caption or _caption_photo(ctx, pending, job)
    except PhotoRefused as refusal:
        return _fail(ctx, pending, refusal.reason, refusal.explanation, refusal.reply)
    look_ahead(ctx, job)  # the next batch is captioned while this job and the next reply
    return _deliver(ctx, pending, caption)


def _start(ctx: worker_context.WorkerContext, request_id: int) -> PendingRequest | None:
    """Mark the request running; None if it already finished (a retry after the end)."""
    with metrics.stage("store"), session_scope(ctx.session_factory) as session:
        request = get_request(session, request_id, for_update=True)
        if request is None:
            raise RequestForgotten(request_id)
        if request.status in FINISHED:
            log.info("request %s is already %s; skipping", request_id, request.status.value)
            return None
        mark_running(session, request_id)
        stored = request.caption
        caption = None if stored is None else RecordedCaption.of(stored)
        return PendingRequest(
            request.id, request.chat_id, request.message_id, request.file_id, request.created_at, caption
        )


def _caption_photo(ctx: worker_context.WorkerContext, pending: PendingRequest, job: Job | None) -> RecordedCaption:
    """Caption the photo, keep it and store the caption (with those queued behind it:
    worker/caption_batch.py)."""
    caption = caption_for(ctx, pending.request_id, pending.file_id, job)
    if caption is not None:
        return caption
    # Not stored by this batch: another worker's batch stored one meanwhile, or /forget came.
    with session_scope(ctx.session_factory) as session:
        request = get_request(session, pending.request_id)
        if request is None:
            raise RequestForgotten(pending.request_id)
        if request.caption is None:
            raise LookupError(f"caption request {pending.request_id} was captioned but its caption was not stored")
        return RecordedCaption.of(request.caption)


def _deliver(ctx: worker_context.WorkerContext, pending: PendingRequest, caption: RecordedCaption) -> dict[str, Any]:
    """Send the caption with its buttons; the request is done once Telegram took the reply.

    Telegram being unavailable raises, for rq.Retry; a refusal (the chat is gone, the bot was
    blocked) will not get better, so the request fails at once.
    """
    try:
        with metrics.stage("send"):
            reply = ctx.bot_api.send_message(
                pending.chat_id,
                as_sentence(caption.text),
                reply_to_message_id=pending.message_id,
                reply_markup=feedback_keyboard(caption.caption_id),
            )
    except BotApiRejected as error:
        log.warning("request %s: reply refused: %s", pending.request_id, error)
        return _fail(ctx, pending, UNDELIVERABLE, NOT_SENDABLE)
    with metrics.stage("store"), session_scope(ctx.session_factory) as session:
        delivered = mark_delivered(session, pending.request_id, reply["message_id"])
    if not delivered:  # /forget came while the reply was on its way: take it back
        take_back(ctx, pending.chat_id, reply["message_id"])
        raise RequestForgotten(pending.request_id)
    metrics.reply_sent(pending.created_at)
    metrics.request_ended("done")
    return {
        "request_id": pending.request_id,
        "status": "done",
        "caption_id": caption.caption_id,
        "latency_ms": round(caption.latency_ms, 1),
    }


def _fail(
    ctx: worker_context.WorkerContext, pending: PendingRequest, reason: str, explanation: str, reply: str | None = None
) -> dict[str, Any]:
    """End a request that no retry can fix, and tell the user why."""
    log.info("request %s failed for good: %s (%s)", pending.request_id, reason, explanation)
    with session_scope(ctx.session_factory) as session:
        if get_request(session, pending.request_id, for_update=True) is None:
            raise RequestForgotten(pending.request_id)
        mark_failed(session, pending.request_id, reason)
    metrics.request_ended("failed", reason)
    tell(ctx, pending.chat_id, pending.message_id, reply or FAILED_FOR_GOOD.format(reason=explanation.rstrip(".")))
    return {"request_id": pending.request_id, "status": "failed", "reason": reason}


def take_back(ctx: worker_context.WorkerContext, chat_id: int, message_id: int) -> None:
    """Delete a message the bot sent (a reply about something /forget deleted meanwhile)."""
    try:
        ctx.bot_api.delete_message(chat_id, message_id)
    except BotApiError as error:
        log.warning("could not delete message %s in chat %s: %s", message_id, chat_id, error)


def tell(ctx: worker_context.WorkerContext, chat_id: int, message_id: int, text: str) -> None:
    """A reply that may not arrive: Telegram failing is logged, not raised."""
    try:
        ctx.bot_api.send_message(chat_id, text, reply_to_message_id=message_id)
    except BotApiError as error:
        log.warning("could not tell chat %s: %s", chat_id, error)


def failure_reason(exc_type: type[BaseException] | None, exc_value: BaseException | None) -> str:
    """A short code for the request's error_reason column."""
    if exc_type is None:
        return "unknown_error"
    if issubclass(exc_type, AbandonedJobError):
        return "worker_lost"
    if issubclass(exc_type, JobTimeoutException):
        return "timeout"
    if issubclass(exc_type, BotApiUnavailable):
        return "telegram_unavailable"
    return f"internal_error:{exc_type.__name__}"


def last_failure_reason(
    exc_type: type[BaseException] | None, exc_value: BaseException | None, *, caption_stored: bool
) -> str:
    """Why the last try failed: Telegram trouble after the caption was stored means the reply
    could not be delivered; anything else keeps its own reason."""
    if caption_stored and exc_type is not None and issubclass(exc_type, BotApiError):
        return UNDELIVERABLE
    return failure_reason(exc_type, exc_value)


def report_caption_failure(
    job: Job,
    connection: Redis,
    exc_type: type[BaseException] | None,
    exc_value: BaseException | None,
    traceback: TracebackType | None,
) -> None:
    """RQ's on_failure callback. It runs after every failed try; only the last one tells the user."""
    request_id = int(job.args[0])
    if job.retries_left:  # the worker logs the failed try and the retry (worker/outages.py)
        return
    ctx = worker_context.current()
    try:
        with session_scope(ctx.session_factory) as session:
            request = get_request(session, request_id, for_update=True)
            if request is None:  # forgotten (/forget)
                _drop_reply_address(job)
                return
            if request.status in FINISHED:
                return
            reason = last_failure_reason(exc_type, exc_value, caption_stored=request.caption is not None)
            mark_failed(session, request_id, reason)
            chat_id, message_id = request.chat_id, request.message_id
        metrics.request_ended("failed", reason)
    except DATABASE_OUTAGES as error:
        reply_to = job.meta.get(REPLY_TO_META)
        if not reply_to:  # a job queued before the photo's chat travelled with it
            raise
        # The user hears anyway; the request stays unfinished in the store, as the database is out.
        log.warning("request %s failed after its last try and the database is unavailable (%s); telling the user",
                    request_id, first_line(error))
        metrics.request_ended("failed", failure_reason(exc_type, exc_value))
        tell(ctx, int(reply_to[0]), int(reply_to[1]), GAVE_UP)
        return
    # After the worker's line for the try itself (a WARNING for an outage, else the traceback).
    log.info("request %s failed after its last try: %s; telling the user", request_id, reason)
    tell(ctx, chat_id, message_id, GAVE_UP)
