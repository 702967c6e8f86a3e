"""🔍 under a caption: where the model looked for each word, drawn for the photo the user sent.

`send_attention_map(caption_id, reply_to_message_id)` runs on the captions queue, where the model
is: it reads the stored photo from the media store, feeds the stored caption's words to the
decoder of the version that wrote it (the active one if that version is no longer loaded), so the
picture shows the very words the user read, draws it as `captionbot caption --attention` does
(captioning.attention_map) and sends it as a reply to the caption. The picture's Telegram file_id
is kept in Redis (service.attention_maps): later presses get it from the bot without a job.

A caption forgotten (/forget) before the job ends leaves nothing: no picture (one already sent is
deleted again) and no file id. A photo file that is gone gets a polite answer. Any other failure
ends the job; `report_attention_failure` tells the user to press again, which queues a new one.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from redis import Redis
from rq.job import Job, get_current_job

from captioning.attention_map import attention_png
from service.attention_maps import (
    PHOTO_GONE_REPLY,
    attention_map_caption,
    end_drawing,
    remember_sent_file,
)
from service.runtime import REDIS_OUTAGES
from store.db import session_scope
from store.outages import first_line
from store.queries import get_caption
from worker import context as worker_context
from worker.jobs import take_back, tell
from worker.photo_check import decode_photo

log = logging.getLogger(__name__)
DRAWING_FAILED = "Sorry, I couldn't draw where I looked just now. Please press 🔍 again in a minute."


@dataclass(frozen=True)
class CaptionToDraw:
    caption_id: int
    text: str
    model_version: str
    chat_id: int
    media_path: str | None


def send_attention_map(caption_id: int, reply_to_message_id: int) -> dict[str, Any]:
    """Draw and send the map; returns a small summary (kept as the job's result)."""
    redis = get_current_job().connection
    try:
        return _draw_and_send(worker_context.current(), redis, caption_id, reply_to_message_id)
    finally:
        _end_drawing_quietly(redis, caption_id)


def _draw_and_send(ctx: worker_context.WorkerContext, redis: Redis, caption_id: int, reply_to: int) -> dict[str, Any]:
    caption = _caption_to_draw(ctx, caption_id)
    if caption is None:
        log.info("caption %s is gone (/forget); no attention map", caption_id)
        return {"caption_id": caption_id, "status": "forgotten"}
    path = None if caption.media_path is None else Path(caption.media_path)
    if path is None or not path.is_file():
        tell(ctx, caption.chat_id, reply_to, PHOTO_GONE_REPLY)
        return {"caption_id": caption_id, "status": "photo_gone"}
    image = decode_photo(path.read_bytes(), ctx.settings.max_image_pixels)  # checked when it arrived
    captioner = ctx.models.for_version(caption.model_version)
    pixels, attended = captioner.attend(image, caption.text)
    png = attention_png(pixels, attended.words, attended.attention, attended.grid_size)
    sent = ctx.bot_api.send_photo(caption.chat_id, png, f"attention-{caption_id}.png",
                                  caption=attention_map_caption(caption.text), reply_to_message_id=reply_to)
    if _caption_to_draw(ctx, caption_id) is None:  # /forget while it was on its way: take it back
        take_back(ctx, caption.chat_id, sent["message_id"])
        return {"caption_id": caption_id, "status": "forgotten"}
    remember_sent_file(redis, caption_id, sent["photo"][-1]["file_id"])
    log.info("attention map of caption %s sent (%d words, model %s)", caption_id, len(attended.words), captioner.version)
    return {"caption_id": caption_id, "status": "sent", "words": len(attended.words), "model_version": captioner.version}


def _caption_to_draw(ctx: worker_context.WorkerContext, caption_id: int) -> CaptionToDraw | None:
    with session_scope(ctx.session_factory) as session:
        caption = get_caption(session, caption_id)
        if caption is None:
            return None
        request = caption.request
        return CaptionToDraw(caption.id, caption.text, caption.model_version, request.chat_id, request.media_path)


def _end_drawing_quietly(redis: Redis, caption_id: int) -> None:
    try:
        end_drawing(redis, caption_id)
    except REDIS_OUTAGES as error:  # the mark expires by itself; until then a press says "still drawing"
        log.warning("could not clear the drawing mark of caption %s: %s", caption_id, first_line(error))


def report_attention_failure(
    job: Job,
    connection: Redis,
    exc_type: type[BaseException] | None,
    exc_value: BaseException | None,
    traceback: TracebackType | None,
) -> None:
    """RQ's on_failure callback: the map was not sent, so the user hears to press again."""
    caption_id, reply_to = int(job.args[0]), int(job.args[1])
    _end_drawing_quietly(connection, caption_id)
    ctx = worker_context.current()
    caption = _caption_to_draw(ctx, caption_id)
    if caption is not None:
        tell(ctx, caption.chat_id, reply_to, DRAWING_FAILED)
