"""Turning a photo someone sent into a recorded request and a queued job, without Telegram types.

These functions block (Redis, the database); handlers run them in a thread. Jobs are named by
their dotted path, so the bot never imports the worker's modules (which hold the model).
"""
from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from redis.exceptions import RedisError
from rq import Callback, Retry

from bot.ratelimit import allow_photo
from service.image_formats import may_be_accepted_image
from service.runtime import AFTER_LAST_TRY_META, REPLY_TO_META, RETRIES_META, Runtime, caption_job_id
from store.db import session_scope
from store.models import RequestStatus
from store.queries import create_request, mark_failed, standing_request_for_message

log = logging.getLogger(__name__)

CAPTION_JOB = "worker.jobs.caption_request"
CAPTION_FAILURE_CALLBACK = "worker.jobs.report_caption_failure"
# For the worker's one-line log of a try that failed on an outage (worker/outages.py).
AFTER_LAST_CAPTION_TRY = "the request fails and the user gets an apology"


@dataclass(frozen=True)
class PhotoSubmission:
    """What the bot knows about one photo or image document when it arrives."""

    user_id: int
    chat_id: int
    message_id: int
    file_id: str
    file_unique_id: str
    file_size: int | None
    mime_type: str | None = None  # None for Telegram photos, which are always JPEG; else only a hint
    # Who asked for the caption when it is not the sender (/caption on a member's photo): the rate
    # limit counts their requests, while the photo and its request stay the sender's (/forget).
    asked_by: int | None = None


class Outcome(str, enum.Enum):
    queued = "queued"
    rate_limited = "rate_limited"
    too_big = "file_too_big"
    unsupported = "unsupported_format"


@dataclass(frozen=True)
class SubmitResult:
    outcome: Outcome
    request_id: int | None = None


@dataclass(frozen=True)
class StandingRequest:
    """A photo's earlier request that has not failed: done (its caption's message, once known) or in hand."""

    done: bool
    reply_message_id: int | None


def standing_request(runtime: Runtime, user_id: int, chat_id: int, message_id: int) -> StandingRequest | None:
    """The photo's request that a second /caption should point to rather than repeat (a failed one
    is asked again)."""
    with session_scope(runtime.session_factory) as session:
        request = standing_request_for_message(session, user_id, chat_id, message_id)
        if request is None:
            return None
        caption = request.caption
        return StandingRequest(request.status is RequestStatus.done, caption.reply_message_id if caption else None)


def submit_photo(runtime: Runtime, photo: PhotoSubmission) -> SubmitResult:
    """Rate-limit, check, record and enqueue one photo.

    Raises RedisError or SQLAlchemyError when storage is unreachable; a request already recorded
    when the queue fails is marked failed, so nothing stays "queued" forever.
    """
    settings = runtime.settings
    asker = photo.user_id if photo.asked_by is None else photo.asked_by
    if not allow_photo(runtime.redis, asker, settings.rate_limit_per_minute):
        return SubmitResult(Outcome.rate_limited)
    rejection = _rejection(photo, settings.max_download_bytes)
    with session_scope(runtime.session_factory) as session:
        request = create_request(
            session,
            user_id=photo.user_id,
            chat_id=photo.chat_id,
            message_id=photo.message_id,
            file_id=photo.file_id,
            file_unique_id=photo.file_unique_id,
            file_size=photo.file_size,
        )
        if rejection is not None:
            mark_failed(session, request.id, rejection.value)
        request_id = request.id
    if rejection is not None:
        return SubmitResult(rejection, request_id)
    try:
        enqueue_caption(runtime, request_id, photo.chat_id, photo.message_id)
    except RedisError:
        with session_scope(runtime.session_factory) as session:
            mark_failed(session, request_id, "queue_unavailable")
        raise
    return SubmitResult(Outcome.queued, request_id)


def _rejection(photo: PhotoSubmission, max_bytes: int) -> Outcome | None:
    """Refuse what is plainly no image (a PDF, a video) or too big; the worker checks the bytes."""
    if not may_be_accepted_image(photo.mime_type):
        return Outcome.unsupported
    if photo.file_size is not None and photo.file_size > max_bytes:
        return Outcome.too_big
    return None


def enqueue_caption(runtime: Runtime, request_id: int, chat_id: int, message_id: int) -> None:
    settings = runtime.settings
    runtime.captions_queue.enqueue(
        CAPTION_JOB,
        request_id,
        job_id=caption_job_id(request_id),
        description=f"caption request {request_id}",
        job_timeout=settings.job_timeout_s,
        retry=Retry(max=settings.job_retries, interval=settings.job_retry_intervals_s),
        on_failure=Callback(CAPTION_FAILURE_CALLBACK),
        meta={RETRIES_META: settings.job_retries, AFTER_LAST_TRY_META: AFTER_LAST_CAPTION_TRY,
              REPLY_TO_META: [chat_id, message_id]},
        result_ttl=3600,
        failure_ttl=7 * 24 * 3600,
    )

