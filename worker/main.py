"""Running one worker process (`captionbot worker`): connect, load the model if captioning, work."""
from __future__ import annotations

import logging
from collections.abc import Sequence

from service.health import Readiness, database_answers, redis_answers
from service.health_server import start_health_server
from service.runtime import CAPTIONS_QUEUE, redis_from_url, resolve_redis_url
from service.settings import Settings
from worker.model_worker import ModelWorker
from worker.models import ModelNotFound

log = logging.getLogger(__name__)


def run_worker(settings: Settings, queue_names: Sequence[str], burst: bool = False, name: str | None = None) -> bool:
    """Work the queues until stopped (or, with burst, until they are empty); True if it ran a job.

    Only a worker on the "captions" queue loads the captioner; a trainer starts in a second. The
    health server starts first, so `/healthz` answers and `/readyz` says "loading" meanwhile.
    """
    url, embedded = resolve_redis_url(settings)
    # RQ raises the command timeout above its blocking wait for jobs; connecting stays short.
    connection = redis_from_url(url, settings.redis_timeout_s)
    load_model = CAPTIONS_QUEUE in queue_names
    readiness = Readiness()
    readiness.await_condition("model" if load_model else "worker", "loading" if load_model else "starting")
    readiness.add_check("redis", redis_answers(connection))
    health = start_health_server(settings.metrics_host, settings.metrics_port, readiness)
    try:
        try:
            worker = ModelWorker(
                list(queue_names),
                connection=connection,
                settings=settings,
                load_model=load_model,
                name=name,
            )
        except ModelNotFound as error:
            raise SystemExit(f"captionbot worker: {error}") from None
        readiness.add_check("database", database_answers(worker.context.engine))
        readiness.satisfied("model" if load_model else "worker")
        log.info("worker %s listening on %s", worker.name, ", ".join(queue_names))
        return worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
    finally:
        if health is not None:
            health.stop()
        connection.close()
        if embedded is not None:
            embedded.close()
