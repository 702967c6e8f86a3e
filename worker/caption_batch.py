"""Captioning the photos waiting in the queue together: one encoder and beam-search pass for a batch.

A caption job that has to caption its photo looks at the caption jobs queued behind it (without
taking them off the queue), waits up to CAPTION_BATCH_WAIT_MS for the batch to fill to
CAPTION_BATCH photos when some are already waiting, downloads the photos side by side, decodes
them, and captions them in one pass per model version. Its own caption it uses at once; the
others' (photo bytes, caption, version) it keeps in this process until their own jobs come: each
then does the rest of its request (keeps the photo, stores the caption, replies) through RQ as
before, with its own retries, result and failure callback. A photo that cannot be fetched or
decoded is left out of the batch; its own job meets the trouble again and fails alone.

Nothing here is visible outside the process: a worker killed mid-batch leaves the jobs it looked
at in the queue, and whoever takes them captions them afresh. Each follower is claimed in Redis
for JOB_TIMEOUT_S (`CLAIM_KEY`), so another worker does not put it in its own batch too; a job
prepared here but taken by another worker is captioned twice, never answered twice. Prepared
photos are dropped after JOB_TIMEOUT_S.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from PIL import Image
from redis.exceptions import RedisError
from rq import Queue
from rq.job import Job

from service.runtime import JOB_SERIALIZER
from store.db import session_scope
from store.queries import photos_to_caption
from worker import metrics
from worker.context import WorkerContext
from worker.photo_fetch import decode_or_refuse, download_photo

log = logging.getLogger(__name__)

CLAIM_KEY = "captionbot:caption-batch:{request_id}"
POLL_S = 0.005
DOWNLOADERS = 8


@dataclass(frozen=True)
class PreparedCaption:
    data: bytes  # the photo as downloaded, for the media store
    text: str
    model_version: str
    prepared_at: float = 0.0  # time.monotonic()


@dataclass(frozen=True)
class WaitingPhoto:
    request_id: int
    file_id: str


_prepared: dict[int, PreparedCaption] = {}
_prepared_lock = threading.Lock()
_downloads = ThreadPoolExecutor(max_workers=DOWNLOADERS, thread_name_prefix="photo-download")


def caption_for(ctx: WorkerContext, request_id: int, file_id: str, job: Job | None) -> PreparedCaption:
    """This request's photo and caption: prepared by an earlier job's batch, or made now together
    with the photos queued behind `job`. Raises PhotoRefused or BotApiUnavailable for this photo only."""
    prepared = _take(request_id, ctx.settings.job_timeout_s)
    if prepared is not None:
        return prepared
    followers = _followers(ctx, job, request_id) if job is not None and ctx.settings.caption_batch > 1 else []
    photos = [WaitingPhoto(request_id, file_id), *followers]
    fetched = [_downloads.submit(_fetch, ctx, photo) for photo in photos]
    own = fetched[0].result()  # this photo's refusal or outage raises here, for its own job
    ready = {request_id: own}
    for photo, future in zip(followers, fetched[1:]):
        decoded = _result_or_none(future, photo)
        if decoded is not None:
            ready[photo.request_id] = decoded
    captions = caption_together(ctx, ready)
    _keep({rid: caption for rid, caption in captions.items() if rid != request_id})
    return captions[request_id]


def caption_together(ctx: WorkerContext, photos: dict[int, tuple[bytes, Image.Image]]) -> dict[int, PreparedCaption]:
    """One encoder and beam-search pass per model version (the canary's share apart) over the photos."""
    by_captioner: dict[int, tuple[object, list[int]]] = {}
    for request_id in photos:
        captioner = ctx.models.for_request(request_id)
        by_captioner.setdefault(id(captioner), (captioner, []))[1].append(request_id)
    captions: dict[int, PreparedCaption] = {}
    beam = ctx.settings.caption_beam
    for captioner, request_ids in by_captioner.values():
        started = time.perf_counter()
        results = captioner.caption([photos[rid][1] for rid in request_ids], beam=beam, stage=metrics.stage)
        now = time.monotonic()
        log.info("captioned %d photo(s) in one pass with %s in %.0f ms: requests %s", len(request_ids),
                 captioner.version, (time.perf_counter() - started) * 1000, ",".join(map(str, request_ids)))
        for rid, result in zip(request_ids, results):
            captions[rid] = PreparedCaption(photos[rid][0], result.text, captioner.version, now)
    return captions


def _fetch(ctx: WorkerContext, photo: WaitingPhoto) -> tuple[bytes, Image.Image]:
    settings = ctx.settings
    with metrics.stage("download"):
        data = download_photo(ctx.bot_api, photo.request_id, photo.file_id, settings.max_download_bytes)
    with metrics.stage("decode"):
        return data, decode_or_refuse(data, settings.max_image_pixels)


def _result_or_none(future: Future, photo: WaitingPhoto) -> tuple[bytes, Image.Image] | None:
    try:
        return future.result()
    except Exception as error:  # its own job fetches it again and deals with this
        log.info("request %s left out of the batch: %s", photo.request_id, error.__class__.__name__)
        return None


def _followers(ctx: WorkerContext, job: Job, request_id: int) -> list[WaitingPhoto]:
    """The caption requests queued behind `job` (up to CAPTION_BATCH - 1), claimed for this batch."""
    try:
        job_ids = _waiting_job_ids(ctx, job)
        request_ids = _caption_requests(job, job_ids, exclude=request_id)
        request_ids = _claim(ctx, job, request_ids)
    except RedisError as error:
        log.warning("request %s: could not look at the queue (%s); captioning it alone", request_id, error)
        return []
    with session_scope(ctx.session_factory) as session:
        file_ids = photos_to_caption(session, request_ids)
    return [WaitingPhoto(rid, file_ids[rid]) for rid in request_ids if rid in file_ids]


def _waiting_job_ids(ctx: WorkerContext, job: Job) -> list[str]:
    """The ids at the head of the job's queue; when some are there, waits up to
    CAPTION_BATCH_WAIT_MS for enough to fill the batch (a lone photo is not kept waiting)."""
    queue = Queue(job.origin, connection=job.connection, serializer=JOB_SERIALIZER)
    wanted = ctx.settings.caption_batch - 1
    deadline = time.monotonic() + ctx.settings.caption_batch_wait_ms / 1000
    job_ids = queue.get_job_ids(0, wanted)
    while job_ids and len(job_ids) < wanted and time.monotonic() < deadline:
        time.sleep(POLL_S)
        job_ids = queue.get_job_ids(0, wanted)
    return job_ids


def _caption_requests(job: Job, job_ids: Sequence[str], exclude: int) -> list[int]:
    """The request ids of those jobs that run the same function as `job` and are not prepared yet."""
    jobs = Job.fetch_many(job_ids, connection=job.connection, serializer=JOB_SERIALIZER)
    with _prepared_lock:
        prepared = set(_prepared)
    request_ids = []
    for follower in jobs:
        if follower is None or follower.func_name != job.func_name or not follower.args:
            continue
        rid = int(follower.args[0])
        if rid != exclude and rid not in prepared:
            request_ids.append(rid)
    return request_ids


def _claim(ctx: WorkerContext, job: Job, request_ids: list[int]) -> list[int]:
    """Those not claimed by another worker's batch; claims expire after JOB_TIMEOUT_S."""
    owner = job.worker_name or "?"
    with job.connection.pipeline(transaction=False) as pipeline:
        for rid in request_ids:
            pipeline.set(CLAIM_KEY.format(request_id=rid), owner, nx=True, ex=ctx.settings.job_timeout_s)
        claimed = pipeline.execute()
    return [rid for rid, won in zip(request_ids, claimed) if won]


def _keep(captions: dict[int, PreparedCaption]) -> None:
    with _prepared_lock:
        _prepared.update(captions)


def _take(request_id: int, max_age_s: float) -> PreparedCaption | None:
    """The prepared caption of this request (once: a retry captions afresh), dropping stale ones."""
    now = time.monotonic()
    with _prepared_lock:
        for stale in [rid for rid, caption in _prepared.items() if now - caption.prepared_at > max_age_s]:
            del _prepared[stale]
        return _prepared.pop(request_id, None)


def discard(request_id: int) -> None:
    """Drop a prepared caption whose request is gone (/forget): its photo leaves memory at once."""
    with _prepared_lock:
        _prepared.pop(request_id, None)

