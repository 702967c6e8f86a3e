"""What a worker process counts for Prometheus (served on METRICS_PORT by service.health_server).

Per photo this is a handful of in-memory counter and histogram updates, microseconds against a
caption's tens of milliseconds. Every stage's series exists from the start (at zero), so a
dashboard and a rate() see it before the first photo.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timezone

from prometheus_client import Counter, Gauge, Histogram, Info

# queue_wait: enqueued → picked up; decode: checking the bytes (format, pixel limit); resize: to the
# encoder's input; encoder and search: the two halves of the model; store: a database transaction
# (a job's own, or a batch's); media: writing photos to the media store; send: the reply to
# Telegram; job: a whole caption job (what the worker spends beyond it is RQ's bookkeeping).
# Batch stages (download, decode, resize, encoder, search, store, media) run once per batch, some
# of them in threads beside the jobs.
STAGES = ("queue_wait", "download", "decode", "resize", "encoder", "search", "store", "media", "send", "job")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
OUTCOMES = ("done", "failed", "forgotten", "skipped")

STAGE_SECONDS = Histogram(
    "captionbot_worker_stage_seconds", "Time a caption request spends in each stage", ["stage"],
    buckets=LATENCY_BUCKETS,
)
REPLY_SECONDS = Histogram(
    "captionbot_worker_reply_seconds", "From the bot receiving the photo to the caption's reply being sent",
    buckets=LATENCY_BUCKETS,
)
REQUESTS = Counter("captionbot_worker_requests_total", "Caption requests ended, by outcome", ["outcome"])
FAILURES = Counter(
    "captionbot_worker_failures_total", "Caption requests that failed for good, by reason", ["reason"]
)
MODEL = Info(
    "captionbot_model",
    "The model version this worker serves (and its loaded canary), and what runs its encoder",
)
MODEL_LOAD_SECONDS = Gauge(
    "captionbot_worker_model_load_seconds", "How long the last model bundle (active or canary) took to load"
)

for _stage in STAGES:
    STAGE_SECONDS.labels(_stage)
for _outcome in OUTCOMES:
    REQUESTS.labels(_outcome)


def stage(name: str) -> AbstractContextManager[object]:
    """Time the block as one stage of a caption request."""
    return STAGE_SECONDS.labels(name).time()


def observe_queue_wait(enqueued_at: datetime | None, started_at: datetime | None) -> None:
    if enqueued_at is None:
        return
    started = started_at or datetime.now(timezone.utc)
    STAGE_SECONDS.labels("queue_wait").observe(max(0.0, (_aware(started) - _aware(enqueued_at)).total_seconds()))


def _aware(moment: datetime) -> datetime:
    """RQ's timestamps are UTC, with or without a zone depending on its version."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def request_ended(outcome: str, reason: str | None = None) -> None:
    REQUESTS.labels(outcome).inc()
    if reason is not None:
        FAILURES.labels(reason).inc()


def reply_sent(photo_received_at: datetime) -> None:
    REPLY_SECONDS.observe(max(0.0, (datetime.now(timezone.utc) - _aware(photo_received_at)).total_seconds()))


def serving(version: str | None, canary: str | None, encoder_runtime: str | None) -> None:
    """`encoder_runtime`: the one the encoder really runs in, which is TensorFlow when
    ENCODER_RUNTIME's could not be loaded (a fallback an operator should see)."""
    MODEL.info({"version": version or "", "canary": canary or "", "encoder_runtime": encoder_runtime or ""})


@contextmanager
def model_load() -> Iterator[None]:
    """Time a bundle's load; a load that fails leaves the last value."""
    started = time.perf_counter()
    yield
    MODEL_LOAD_SECONDS.set(time.perf_counter() - started)
