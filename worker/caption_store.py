"""Keeping what a captioning pass made: the photos in the media store and the captions in the
database, for a whole batch in two transactions instead of three per photo.

A caption stored here is what a request's own job then sends (as a retry sends a caption an earlier
try stored): the job that finds one never captions the photo again. Requests gone meanwhile
(/forget) or already handled elsewhere (finished, or a caption stored by another worker) are left
out, and the photo of a gone request leaves the media store unless someone else's request refers to
it. A transaction that fails stores nothing of the batch, so every request is still captioned by
its own job.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

from service.media_files import delete_media_file
from store.db import session_scope
from store.models import Caption
from store.queries import (
    get_request,
    mark_running,
    media_in_use,
    photos_to_caption,
    record_caption,
    record_media,
)
from worker import metrics
from worker.context import WorkerContext


@dataclass(frozen=True)
class PreparedCaption:
    """A photo as downloaded and the caption one pass made for it."""

    request_id: int
    data: bytes
    text: str
    model_version: str


@dataclass(frozen=True)
class RecordedCaption:
    caption_id: int
    text: str
    latency_ms: float

    @classmethod
    def of(cls, caption: Caption) -> RecordedCaption:
        return cls(caption.id, caption.text, caption.latency_ms)


def store_captions(ctx: WorkerContext, captions: Iterable[PreparedCaption]) -> dict[int, RecordedCaption]:
    """Write the photos and record the captions; request id → the stored caption, for those stored.

    The file's path goes on the request before the file is written, so a /forget finds it; a
    /forget between the two found no file yet, so the second transaction looks again and, for a
    request gone by then, removes the file (decided in that transaction, so a request recording the
    same bytes meanwhile either keeps the file or comes after its deletion).
    """
    prepared = {caption.request_id: caption for caption in captions}
    media = {rid: ctx.media.locate(caption.data) for rid, caption in prepared.items()}
    received_at: dict[int, datetime] = {}
    with metrics.stage("store"), session_scope(ctx.session_factory) as session:
        for rid in sorted(photos_to_caption(session, sorted(prepared))):
            if record_media(session, rid, media_path=str(media[rid].path), media_sha256=media[rid].sha256):
                received_at[rid] = get_request(session, rid).created_at  # loaded by record_media: no query
    with metrics.stage("media"):
        for rid in received_at:
            ctx.media.store(prepared[rid].data)
    stored: dict[int, RecordedCaption] = {}
    with metrics.stage("store"), session_scope(ctx.session_factory) as session:
        for rid, created_at in received_at.items():
            caption = prepared[rid]
            latency_ms = (datetime.now(timezone.utc) - created_at).total_seconds() * 1000
            row = record_caption(session, rid, text=caption.text, model_version=caption.model_version,
                                 beam=ctx.settings.caption_beam, latency_ms=latency_ms)
            if row is not None:
                mark_running(session, rid)  # its job then finds it in hand and writes nothing before the reply
                stored[rid] = RecordedCaption.of(row)
            elif not media_in_use(session, str(media[rid].path)):  # gone meanwhile (/forget)
                delete_media_file(media[rid].path, ctx.media.root)
    return stored
