"""🔍 under a caption, without Telegram types: is the press genuine, is the photo still here, was
its attention map sent before (then the bot resends it), else queue one drawing on a caption worker.

These functions block (Redis, the database); the handler runs them in a thread. Redis or the
database being out escapes, for the error handler to answer the press; a drawing claimed when
the queue fails is released again, so the next press can queue it.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from redis.exceptions import RedisError
from rq import Callback

from bot.feedback import ButtonMessage, caption_behind
from service.attention_maps import (
    ATTENTION_FAILURE_CALLBACK,
    ATTENTION_JOB,
    attention_job_id,
    claim_drawing,
    drawing_claim_ttl_s,
    end_drawing,
    forget_attention_maps,
    sent_file_id,
)
from service.runtime import Runtime
from store.db import session_scope


class Lookup(str, enum.Enum):
    stale = "stale"  # forged, another chat's, or the caption is gone (/forget)
    photo_gone = "photo_gone"  # the caption is there, its photo file is not
    sent_before = "sent_before"
    to_draw = "to_draw"


@dataclass(frozen=True)
class AttentionLookup:
    outcome: Lookup
    caption_text: str = ""
    file_id: str | None = None


def look_up_attention_map(runtime: Runtime, caption_id: int, where: ButtonMessage) -> AttentionLookup:
    """What a press of 🔍 under `where` should do (it changes nothing)."""
    with session_scope(runtime.session_factory) as session:
        caption = caption_behind(session, caption_id, where)
        if caption is None:
            return AttentionLookup(Lookup.stale)
        text, media_path = caption.text, caption.request.media_path
    if media_path is None or not Path(media_path).is_file():
        return AttentionLookup(Lookup.photo_gone, text)
    file_id = sent_file_id(runtime.redis, caption_id)
    if file_id is not None:
        return AttentionLookup(Lookup.sent_before, text, file_id)
    return AttentionLookup(Lookup.to_draw, text)


def queue_attention_map(runtime: Runtime, caption_id: int, reply_to_message_id: int) -> bool:
    """Queue the drawing on the captions queue (ids only); False if one is under way already."""
    settings = runtime.settings
    if not claim_drawing(runtime.redis, caption_id, drawing_claim_ttl_s(settings.job_timeout_s)):
        return False
    try:
        runtime.captions_queue.enqueue(
            ATTENTION_JOB,
            caption_id,
            reply_to_message_id,
            job_id=attention_job_id(caption_id),
            description=f"attention map of caption {caption_id}",
            job_timeout=settings.job_timeout_s,
            on_failure=Callback(ATTENTION_FAILURE_CALLBACK),
            result_ttl=600,
            failure_ttl=24 * 3600,
        )
    except RedisError:
        try:
            end_drawing(runtime.redis, caption_id)
        except RedisError:  # it expires by itself
            pass
        raise
    return True


def forget_sent_map(runtime: Runtime, caption_id: int) -> None:
    """Telegram no longer knows the file: the next drawing replaces it."""
    forget_attention_maps(runtime.redis, [caption_id])
