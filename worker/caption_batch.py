"""Captioning the photos waiting in the queue together: one encoder and beam-search pass for a batch,
and the next batch captioned while the jobs of this one reply.

A caption job that has to caption its photo looks at the caption jobs queued behind it (without
taking them off the queue), waits up to CAPTION_BATCH_WAIT_MS for CAPTION_BATCH photos when some are
already waiting, downloads the photos side by side, decodes them, captions them in one pass per model
version, and stores the photos and captions in two transactions (worker/caption_store.py). Each of
the other jobs, when it comes, finds its caption stored and only replies, through RQ as before, with
its own retries, result and failure callback. A photo that cannot be fetched or decoded is left out;
its own job meets the trouble again and fails alone.

While those jobs reply, a look-ahead thread does the same for the next jobs in the queue (one batch
at a time, within the first 2 × CAPTION_BATCH queued jobs), so the model and the replies overlap; a
job whose photo is in that batch waits for it. Passes never run side by side: the CPU is the model's.

Each photo in a batch is claimed in Redis for JOB_TIMEOUT_S (`CLAIM_KEY`), so another worker leaves
it out of its own batches; claims are dropped if the batch cannot be stored. Nothing is kept only in
memory: a worker killed mid-batch leaves the jobs it looked at in the queue, with their captions
stored or not, and whoever takes them sends a stored caption or captions the photo afresh.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from PIL import Image
from redis import Redis
from rq import Queue
from rq.job import Job

from service.runtime import JOB_SERIALIZER, STORAGE_OUTAGES, caption_request_of
from store.db import session_scope
from store.queries import photos_to_caption
from worker import metrics
from worker.caption_store import PreparedCaption, RecordedCaption, store_captions
from worker.context import WorkerContext
from worker.photo_fetch import decode_or_refuse, download_photo

log = logging.getLogger(__name__)

CLAIM_KEY = "captionbot:caption-batch:{request_id}"
POLL_S = 0.005
DOWNLOADERS = 8
WINDOW_BATCHES = 2  # how far down the queue a batch may look, in batches


@dataclass(frozen=True)
class WaitingPhoto:
    request_id: int
    file_id: str


@dataclass(frozen=True)
class QueueView:
    """Where a batch looks for photos: the queue a caption job came from, and who claims them."""

    queue_name: str
    connection: Redis
    owner: str

    @classmethod
    def of(cls, job: Job) -> QueueView:
        return cls(job.origin, job.connection, job.worker_name or "?")


_in_flight: dict[int, Future] = {}  # request id → the look-ahead batch captioning it
_in_flight_lock = threading.Lock()
_pass_lock = threading.Lock()
_downloads = ThreadPoolExecutor(max_workers=DOWNLOADERS, thread_name_prefix="photo-download")
_look_ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix="caption-look-ahead")
_look_ahead_running = threading.Event()


def caption_for(ctx: WorkerContext, request_id: int, file_id: str, job: Job | None) -> RecordedCaption | None:
    """Caption this request's photo with those queued behind `job`, and store them all; this
    request's stored caption, or None if it was forgotten meanwhile. Raises PhotoRefused or
    BotApiUnavailable for this photo only."""
    view = QueueView.of(job) if job is not None and ctx.settings.caption_batch > 1 else None
    followers = _gather(ctx, view, ctx.settings.caption_batch - 1, exclude={request_id}) if view else []
    photos = [WaitingPhoto(request_id, file_id), *followers]
    fetched = [_downloads.submit(_fetch, ctx, photo) for photo in photos]
    try:
        own = fetched[0].result()  # this photo's refusal or outage raises here, for its own job
    except BaseException:
        _release(view, [photo.request_id for photo in followers])
        raise
    ready = {request_id: own, **_fetched_followers(followers, fetched[1:])}
    stored = _caption_and_store(ctx, view, ready, [photo.request_id for photo in followers])
    return stored.get(request_id)


def await_batch(request_id: int, timeout_s: float) -> None:
    """If a look-ahead batch here is captioning this request's photo, wait until it is stored (or
    failed: the job then captions the photo itself)."""
    with _in_flight_lock:
        batch = _in_flight.get(request_id)
    if batch is not None:
        try:
            batch.result(timeout=timeout_s)
        except Exception:  # logged by the batch; this job carries on alone
            pass


def look_ahead(ctx: WorkerContext, job: Job | None) -> None:
    """Start captioning the next batch in the background if photos wait in the queue that no batch
    has (one look-ahead at a time; a cheap look at the queue when one is due)."""
    if job is None or ctx.settings.caption_batch == 1 or _look_ahead_running.is_set():
        return
    view = QueueView.of(job)
    try:
        if not _unclaimed(ctx, view, _queued_requests(ctx, view, exclude=set())):
            return
    except STORAGE_OUTAGES as error:
        log.warning("could not look at the queue for the next batch: %s", error)
        return
    _look_ahead_running.set()
    _look_ahead.submit(_caption_ahead, ctx, view)


def caption_together(ctx: WorkerContext, photos: dict[int, tuple[bytes, Image.Image]]) -> list[PreparedCaption]:
    """One encoder and beam-search pass per model version (the canary's share apart) over the photos."""
    by_captioner: dict[int, tuple[object, list[int]]] = {}
    for request_id in photos:
        captioner = ctx.models.for_request(request_id)
        by_captioner.setdefault(id(captioner), (captioner, []))[1].append(request_id)
    captions: list[PreparedCaption] = []
    beam = ctx.settings.caption_beam
    for captioner, request_ids in by_captioner.values():
        with _pass_lock:
            started = time.perf_counter()
            results = captioner.caption([photos[rid][1] for rid in request_ids], beam=beam, stage=metrics.stage)
        log.info("captioned %d photo(s) in one pass with %s in %.0f ms: requests %s", len(request_ids),
                 captioner.version, (time.perf_counter() - started) * 1000, ",".join(map(str, request_ids)))
        captions.extend(PreparedCaption(rid, photos[rid][0], result.text, captioner.version)
                        for rid, result in zip(request_ids, results))
    return captions


def _caption_ahead(ctx: WorkerContext, view: QueueView) -> None:
    """The look-ahead thread's batch: the photos no batch has, captioned and stored while this
    worker's jobs reply; their jobs wait for it (`await_batch`)."""
    batch: Future = Future()
    try:
        photos = _gather(ctx, view, ctx.settings.caption_batch, exclude=set(), in_flight=batch)
        if photos:
            fetched = [_downloads.submit(_fetch, ctx, photo) for photo in photos]
            ready = _fetched_followers(photos, fetched)
            _caption_and_store(ctx, view, ready, [photo.request_id for photo in photos])
        batch.set_result(None)
    except Exception as error:  # its jobs caption their photos themselves
        batch.set_exception(error)
        log.exception("the look-ahead batch failed; its photos are captioned by their own jobs")
    finally:
        _leave(batch)
        _look_ahead_running.clear()


def _caption_and_store(
    ctx: WorkerContext, view: QueueView | None, ready: dict[int, tuple[bytes, Image.Image]], claimed: list[int]
) -> dict[int, RecordedCaption]:
    """Caption and store `ready`; if that fails, the claims go, so the jobs batch again."""
    try:
        return store_captions(ctx, caption_together(ctx, ready))
    except BaseException:
        _release(view, claimed)
        raise


def _fetch(ctx: WorkerContext, photo: WaitingPhoto) -> tuple[bytes, Image.Image]:
    settings = ctx.settings
    with metrics.stage("download"):
        data = download_photo(ctx.bot_api, photo.request_id, photo.file_id, settings.max_download_bytes)
    with metrics.stage("decode"):
        return data, decode_or_refuse(data, settings.max_image_pixels)


def _fetched_followers(photos: list[WaitingPhoto], fetched: list[Future]) -> dict[int, tuple[bytes, Image.Image]]:
    """The photos that downloaded and decoded; the others' own jobs fetch them again and deal with it."""
    ready = {}
    for photo, future in zip(photos, fetched):
        try:
            ready[photo.request_id] = future.result()
        except Exception as error:
            log.info("request %s left out of the batch: %s", photo.request_id, error.__class__.__name__)
    return ready


def _gather(
    ctx: WorkerContext, view: QueueView, wanted: int, exclude: set[int], in_flight: Future | None = None
) -> list[WaitingPhoto]:
    """Up to `wanted` caption requests queued within the window that no batch has, claimed for this
    one (and, for a look-ahead, entered in `_in_flight` before they are claimed, so their jobs wait
    for it rather than caption them alongside)."""
    try:
        candidates = _waiting_requests(ctx, view, wanted, exclude)
        if in_flight is not None:
            candidates = _enter(candidates, in_flight)
        claimed = _claim(ctx, view, candidates)
    except STORAGE_OUTAGES as error:
        log.warning("could not look at the queue (%s); captioning without a batch", error)
        return []
    try:
        with session_scope(ctx.session_factory) as session:
            file_ids = photos_to_caption(session, claimed)
    except BaseException:
        _release(view, claimed)
        raise
    _release(view, [rid for rid in claimed if rid not in file_ids])
    photos = [WaitingPhoto(rid, file_ids[rid]) for rid in claimed if rid in file_ids]
    if in_flight is not None:
        _leave(in_flight, keep={photo.request_id for photo in photos})
    return photos


def _enter(request_ids: list[int], batch: Future) -> list[int]:
    with _in_flight_lock:
        entered = [rid for rid in request_ids if rid not in _in_flight]
        _in_flight.update(dict.fromkeys(entered, batch))
    return entered


def _leave(batch: Future, keep: set[int] = frozenset()) -> None:
    with _in_flight_lock:
        for rid in [rid for rid, entry in _in_flight.items() if entry is batch and rid not in keep]:
            del _in_flight[rid]


def _waiting_requests(ctx: WorkerContext, view: QueueView, wanted: int, exclude: set[int]) -> list[int]:
    """The first `wanted` unclaimed requests in the window; when some wait but fewer, it waits up
    to CAPTION_BATCH_WAIT_MS for more (a lone photo is not kept waiting)."""
    deadline = time.monotonic() + ctx.settings.caption_batch_wait_ms / 1000
    while True:
        waiting = _unclaimed(ctx, view, _queued_requests(ctx, view, exclude))
        if not waiting or len(waiting) >= wanted or time.monotonic() >= deadline:
            return waiting[:wanted]
        time.sleep(POLL_S)


def _queued_requests(ctx: WorkerContext, view: QueueView, exclude: set[int]) -> list[int]:
    """The requests of the caption jobs in the first 2 × CAPTION_BATCH places of the queue, less
    those a look-ahead batch here already has."""
    queue = Queue(view.queue_name, connection=view.connection, serializer=JOB_SERIALIZER)
    job_ids = queue.get_job_ids(0, WINDOW_BATCHES * ctx.settings.caption_batch)
    with _in_flight_lock:
        taken = exclude | set(_in_flight)
    requests = (caption_request_of(job_id) for job_id in job_ids)
    return [rid for rid in requests if rid is not None and rid not in taken]


def _unclaimed(ctx: WorkerContext, view: QueueView, request_ids: list[int]) -> list[int]:
    if not request_ids:
        return []
    claims = view.connection.mget([CLAIM_KEY.format(request_id=rid) for rid in request_ids])
    return [rid for rid, claim in zip(request_ids, claims) if claim is None]


def _claim(ctx: WorkerContext, view: QueueView, request_ids: list[int]) -> list[int]:
    """Those not claimed by another batch meanwhile; claims expire after JOB_TIMEOUT_S."""
    if not request_ids:
        return []
    with view.connection.pipeline(transaction=False) as pipeline:
        for rid in request_ids:
            pipeline.set(CLAIM_KEY.format(request_id=rid), view.owner, nx=True, ex=ctx.settings.job_timeout_s)
        won = pipeline.execute()
    return [rid for rid, claimed in zip(request_ids, won) if claimed]


def _release(view: QueueView | None, request_ids: Iterable[int]) -> None:
    """Drop claims of photos this worker will not caption after all, so another batch may take them."""
    keys = [CLAIM_KEY.format(request_id=rid) for rid in request_ids]
    if view is None or not keys:
        return
    try:
        view.connection.delete(*keys)
    except STORAGE_OUTAGES as error:
        log.warning("could not drop batch claims (they expire): %s", error)
