"""A worker outlives Redis going away and keeps its name across a restart: the two ways the load
benchmark's Redis restart and worker SIGKILL once ended caption workers (each restart reloads the
model). The worker runs in this process without a model; Redis is reached through a gate the test
shuts and opens."""
from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from rq import Queue
from rq.utils import now, utcformat

from service.runtime import JOB_SERIALIZER
from service.settings import Settings
from tcp_gate import TcpGate
from worker.model_worker import ModelWorker


def model_free_worker(connection: redis.Redis, tmp_path: Path, name: str) -> ModelWorker:
    settings = Settings(_env_file=None, telegram_token="123:test", data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
                        job_heartbeat_s=1)
    return ModelWorker(["captions"], connection=connection, settings=settings, load_model=False, name=name)


def plant_namesake(redis_client: redis.Redis, name: str, beat_seconds_ago: float) -> None:
    """The registration a worker leaves when it is killed: no death, its last beat in the past."""
    redis_client.hset(f"rq:worker:{name}", mapping={
        "last_heartbeat": utcformat(now() - timedelta(seconds=beat_seconds_ago)), "queues": "captions", "state": "busy",
    })
    redis_client.sadd("rq:workers", f"rq:worker:{name}")


def test_a_worker_restarted_under_its_name_takes_over_the_registration_its_killed_namesake_left(redis_client, tmp_path, caplog):
    plant_namesake(redis_client, "caption-worker-1", beat_seconds_ago=60)
    queue = Queue("captions", connection=redis_client, serializer=JOB_SERIALIZER)
    job = queue.enqueue("builtins.len", "four")
    worker = model_free_worker(redis_client, tmp_path, "caption-worker-1")
    with caplog.at_level(logging.WARNING):
        assert worker.work(burst=True, with_scheduler=False)
    assert job.get_status(refresh=True) == "finished"
    assert any("taking over its name" in r.getMessage() for r in caplog.records)


def test_a_live_namesake_keeps_its_name(redis_client, tmp_path):
    plant_namesake(redis_client, "caption-worker-2", beat_seconds_ago=0)
    stop = threading.Event()

    def beat() -> None:  # the namesake is alive: it keeps beating
        while not stop.wait(0.3):
            redis_client.hset("rq:worker:caption-worker-2", "last_heartbeat", utcformat(now()))

    beating = threading.Thread(target=beat, daemon=True)
    beating.start()
    try:
        with pytest.raises(ValueError, match="active worker named 'caption-worker-2'"):
            model_free_worker(redis_client, tmp_path, "caption-worker-2").work(burst=True, with_scheduler=False)
    finally:
        stop.set()
        beating.join()


def test_redis_going_away_while_a_job_ends_does_not_end_the_worker(redis_client, redis_url, tmp_path, caplog):
    host, port_db = redis_url.split("//", 1)[1].split(":")
    port, db = port_db.split("/")
    gate = TcpGate(host, int(port)).open()
    # No client-side retries: each call during the outage fails at once, so every step of the
    # worker's loop meets it (with retries, some would wait until Redis is back).
    gated = redis.Redis(host="127.0.0.1", port=gate.port, db=int(db), retry=Retry(NoBackoff(), 0))
    queue = Queue("captions", connection=redis_client, serializer=JOB_SERIALIZER)
    during = queue.enqueue("time.sleep", 2)
    ran_after = tmp_path / "the-next-job-ran"
    queue.enqueue("os.mkdir", str(ran_after))
    worker = model_free_worker(gated, tmp_path, "outage-worker")

    def cut_redis_while_the_first_job_runs() -> None:
        deadline = time.monotonic() + 60
        while during.get_status(refresh=True) != "started" and time.monotonic() < deadline:
            time.sleep(0.05)
        gate.shut()
        time.sleep(6)  # the job ends (after 2 s) while Redis is away
        gate.open()

    outage = threading.Thread(target=cut_redis_while_the_first_job_runs, daemon=True)
    outage.start()
    try:
        with caplog.at_level(logging.INFO):
            worker.work(burst=True, with_scheduler=False)
    finally:
        outage.join()
        gate.shut()
    assert ran_after.is_dir()  # the worker went on to the next job
    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if "unhandled exception, quitting" in m]
    assert any(f"job {during.id}: Redis went away while its end was recorded" in m for m in messages)
