"""The scheduler that puts retries back on their queue keeps working when the worker holding it is
killed: a lock left by a scheduler that stopped beating is taken over at the next idle heartbeat,
not a minute later when it expires (worker.model_worker.ThreadScheduler.revive)."""
from __future__ import annotations

import time
from datetime import timedelta

from rq import Queue
from rq.scheduler import SCHEDULER_KEY_TEMPLATE
from rq.utils import now, utcformat

from service.runtime import JOB_SERIALIZER
from worker.model_worker import ThreadScheduler

LOCK_KEY = "rq:scheduler-lock:captions"


def plant_lock(redis_client, holder: str, beat_seconds_ago: float) -> None:
    """A lock as RQ's scheduler leaves it: held for a minute, its holder's last beat recorded."""
    redis_client.set(LOCK_KEY, holder, ex=61)
    beat = utcformat(now() - timedelta(seconds=beat_seconds_ago))
    redis_client.hset(SCHEDULER_KEY_TEMPLATE % holder, "last_heartbeat", beat)


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_a_lock_left_by_a_killed_workers_scheduler_is_taken_over_and_a_waiting_retry_runs(redis_client):
    plant_lock(redis_client, "killed-worker-scheduler", beat_seconds_ago=20)
    queue = Queue("captions", connection=redis_client, serializer=JOB_SERIALIZER)
    job = queue.enqueue_in(timedelta(milliseconds=200), "worker.jobs.caption_request", 1)
    scheduler = ThreadScheduler(["captions"], connection=redis_client)
    try:
        scheduler.revive(stale_after_s=15)
        assert redis_client.get(LOCK_KEY).decode() == scheduler.name
        assert wait_for(lambda: job.id in queue.job_ids, timeout=10), "the waiting job never reached its queue"
    finally:
        scheduler._stop_requested = True
        scheduler._process.join(timeout=10)


def test_a_lock_whose_scheduler_still_beats_is_left_alone(redis_client):
    plant_lock(redis_client, "live-scheduler", beat_seconds_ago=1)
    scheduler = ThreadScheduler(["captions"], connection=redis_client)
    scheduler.revive(stale_after_s=15)
    assert redis_client.get(LOCK_KEY).decode() == "live-scheduler"
    assert scheduler._process is None


def test_a_scheduler_whose_thread_died_is_started_again(redis_client):
    scheduler = ThreadScheduler(["captions"], connection=redis_client)
    scheduler.revive(stale_after_s=15)
    first = scheduler._process
    scheduler._stop_requested = True
    first.join(timeout=10)
    scheduler._stop_requested = False
    scheduler.revive(stale_after_s=15)
    try:
        assert scheduler._process is not first and scheduler._process.is_alive()
        assert redis_client.get(LOCK_KEY).decode() == scheduler.name
    finally:
        scheduler._stop_requested = True
        scheduler._process.join(timeout=10)
