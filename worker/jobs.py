"""The jobs workers run. They carry ids only (RQ's JSON serializer); the rest is in the database.

`caption_request`: download the photo through the Bot API, decode it safely, keep it in the media
store, caption it, store the caption and reply with the 👍 👎 ✏️ buttons.
A bad image ends the request at once with a clear message (no retry). Trouble reaching Telegram
raises, so rq.Retry tries again; after the last try `report_caption_failure` apologises.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from types import TracebackType
from typing import Any

from redis import Redis
from rq.exceptions import AbandonedJobError
from rq.job import Job
from rq.timeouts import JobTimeoutException

from captionbot.feedback_buttons import feedback_keyboard
from captioning.images import ImageError, open_image
from store.db import session_scope
from store.models import RequestStatus
from store.queries import get_request, mark_failed, mark_running, record_caption, set_reply_message
from worker import context as worker_context
from worker.bot_api import BotApiError, BotApiRejected, BotApiUnavailable, FileTooLarge

log = logging.getLogger(__name__)

FAILED_FOR_GOOD = "Sorry, I couldn't describe this photo: {reason}."
GAVE_UP = "Sorry, I couldn't describe this photo just now. Please send it again in a few minutes."
TOO_LARGE_TO_FETCH = "the file is too big for me to fetch"
NOT_FETCHABLE = "Telegram would not give me the file"


@dataclass(frozen=True)
class PendingRequest:
    request_id: int
    chat_id: int
    message_id: int
    file_id: str
    created_at: datetime


def caption_request(request_id: int) -> dict[str, Any]:
    """Caption one request end to end; returns a small summary (kept as the job's result)."""
    ctx = worker_context.current()
    pending = _start(ctx, request_id)
    if pending is None:
        return {"request_id": request_id, "status": "skipped"}
    settings = ctx.settings
    try:
        data = ctx.bot_api.download_file(pending.file_id, settings.max_download_bytes)
    except FileTooLarge:
        return _fail(ctx, pending, "file_too_big", TOO_LARGE_TO_FETCH)
    except BotApiRejected as error:
        log.warning("request %s: download refused: %s", request_id, error)
        return _fail(ctx, pending, "download_refused", NOT_FETCHABLE)
    try:
        image = open_image(data, max_pixels=settings.max_image_pixels)
    except ImageError as error:
        return _fail(ctx, pending, error.reason, str(error))
    media = ctx.media.store(data)
    captioner = ctx.models.current()
    result = captioner.caption([image], beam=settings.caption_beam)[0]
    latency_ms = (datetime.now(timezone.utc) - pending.created_at).total_seconds() * 1000
    with session_scope(ctx.session_factory) as session:
        caption = record_caption(
            session,
            request_id,
            text=result.text,
            model_version=captioner.version,
            beam=settings.caption_beam,
            latency_ms=latency_ms,
            media_path=str(media.path),
            media_sha256=media.sha256,
        )
        caption_id, already_sent = caption.id, caption.reply_message_id is not None
    if already_sent:  # an earlier try got this far before it died
        return {"request_id": request_id, "status": "done", "caption_id": caption_id}
    reply = ctx.bot_api.send_message(
        pending.chat_id,
        as_sentence(result.text),
        reply_to_message_id=pending.message_id,
        reply_markup=feedback_keyboard(caption_id),
    )
    with session_scope(ctx.session_factory) as session:
        set_reply_message(session, caption_id, reply["message_id"])
    return {"request_id": request_id, "status": "done", "caption_id": caption_id, "latency_ms": round(latency_ms, 1)}


def _start(ctx: worker_context.WorkerContext, request_id: int) -> PendingRequest | None:
    """Mark the request running; None if it is gone (/forget) or already finished."""
    with session_scope(ctx.session_factory) as session:
        request = get_request(session, request_id)
        if request is None:
            log.info("request %s no longer exists; skipping", request_id)
            return None
        answered = request.caption is not None and request.caption.reply_message_id is not None
        if request.status is RequestStatus.failed or answered:
            log.info("request %s is already %s; skipping", request_id, request.status.value)
            return None
        mark_running(session, request_id)
        return PendingRequest(request.id, request.chat_id, request.message_id, request.file_id, request.created_at)


def _fail(ctx: worker_context.WorkerContext, pending: PendingRequest, reason: str, explanation: str) -> dict[str, Any]:
    """End a request that no retry can fix, and tell the user why."""
    log.info("request %s failed for good: %s (%s)", pending.request_id, reason, explanation)
    with session_scope(ctx.session_factory) as session:
        mark_failed(session, pending.request_id, reason)
    _tell(ctx, pending.chat_id, pending.message_id, FAILED_FOR_GOOD.format(reason=explanation.rstrip(".")))
    return {"request_id": pending.request_id, "status": "failed", "reason": reason}


def _tell(ctx: worker_context.WorkerContext, chat_id: int, message_id: int, text: str) -> None:
    try:
        ctx.bot_api.send_message(chat_id, text, reply_to_message_id=message_id)
    except BotApiError as error:
        log.warning("could not tell chat %s: %s", chat_id, error)


def as_sentence(text: str) -> str:
    """"a dog runs on grass" -> "A dog runs on grass." (the stored caption stays as the model said it)."""
    text = text.strip()
    if not text:
        return "I'm not sure what this shows."
    if text[-1] not in ".!?":
        text += "."
    return text[0].upper() + text[1:]


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


def report_caption_failure(
    job: Job,
    connection: Redis,
    exc_type: type[BaseException] | None,
    exc_value: BaseException | None,
    traceback: TracebackType | None,
) -> None:
    """RQ's on_failure callback. It runs after every failed try; only the last one tells the user."""
    request_id = int(job.args[0])
    if job.retries_left:
        log.info("request %s: try failed (%s); %s retries left", request_id, exc_type, job.retries_left)
        return
    ctx = worker_context.current()
    reason = failure_reason(exc_type, exc_value)
    with session_scope(ctx.session_factory) as session:
        request = get_request(session, request_id)
        if request is None or request.status is RequestStatus.done:
            return
        mark_failed(session, request_id, reason)
        chat_id, message_id = request.chat_id, request.message_id
    log.warning("request %s failed after its last try: %s", request_id, reason)
    _tell(ctx, chat_id, message_id, GAVE_UP)

