"""`ModelWorker`: an RQ worker that loads the captioner once and runs jobs in its own process.

Why not RQ's default forking worker: a work-horse forked from a process that holds TensorFlow
deadlocks inside TensorFlow. So the worker is a SimpleWorker (no fork per job), and two things
RQ would do in other processes happen in threads of this one:
- the scheduler (it moves jobs whose retry waits are over back onto their queue), and
- the heartbeat of the running job, so that a worker killed mid-job is noticed within
  3 × job_heartbeat_s and its job retried by another worker (RQ's abandoned-job handling).
  An idle worker looks for such jobs every job_heartbeat_s and cleans them up at once, instead of
  at RQ's next scheduled upkeep, which with the default settings can be a minute away.

Redis going away mid-run does not end the worker (a restart would reload the model): a job whose
end cannot be recorded stays in the started registry and is retried as abandoned once Redis is
back (a request already answered is skipped then), and the loop's own Redis calls wait it out. A
worker restarted under the same name takes over the registration its killed namesake left behind.

A caption worker also looks at the active model version at each idle heartbeat and just before
each job (worker.models loads a new one in the background), and records the version it serves
in its RQ worker record for /models.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from collections.abc import Sequence

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.executions import Execution
from rq.job import Job
from rq.scheduler import SCHEDULER_KEY_TEMPLATE, RQScheduler
from rq.scheduler import run as run_scheduler
from rq.job_lifecycle import call_exception_handlers
from rq.scripts import release_lock
from rq.utils import current_timestamp, now, utcparse
from rq import worker_registration
from rq.worker import WorkerStatus

from service.runtime import JOB_SERIALIZER, REDIS_OUTAGES
from service.settings import Settings
from worker import context as worker_context
from worker import metrics
from worker.context import WorkerContext
from store.outages import first_line
from worker.outages import outage_line, outage_of

log = logging.getLogger(__name__)
MISSED_HEARTBEATS = 3


class ThreadScheduler(RQScheduler):
    """RQ's scheduler in a daemon thread instead of a forked process; it dies with its worker."""

    def _install_signal_handlers(self) -> None:
        """Signals belong to the worker's main thread, which stops this scheduler on shutdown."""

    def revive(self, stale_after_s: float) -> None:
        """Run again if the thread died (a Redis error ends it), and take over a queue's lock whose
        holder stopped beating for `stale_after_s`: a scheduler killed with its worker keeps the
        lock for a minute, and every retry waiting for its time would wait that long too."""
        if self._process is not None and self._process.is_alive() and self.acquired_locks == self._queue_names:
            return
        for name in self._queue_names - self.acquired_locks:
            key = self.get_locking_key(name)
            holder = self.connection.get(key)
            if holder is None or holder.decode() == self.name:
                continue
            beat = self.connection.hget(SCHEDULER_KEY_TEMPLATE % holder.decode(), "last_heartbeat")
            if beat is None or (now() - utcparse(beat.decode())).total_seconds() > stale_after_s:
                log.warning("scheduler %s stopped beating; taking over its lock for %s", holder.decode(), name)
                release_lock(self.connection, key, holder.decode())
        self.acquire_locks(auto_start=True)

    def start(self) -> threading.Thread:
        self._status = self.Status.STARTED
        self._process = threading.Thread(target=run_scheduler, args=(self,), name="rq-scheduler", daemon=True)
        self._process.start()
        return self._process


class ModelWorker(SimpleWorker):
    """A worker whose jobs find the loaded captioner, database and Bot API in `worker.context`."""

    def __init__(
        self,
        queues: Sequence[str | Queue],
        *,
        connection: Redis,
        settings: Settings,
        load_model: bool = True,
        **kwargs,
    ) -> None:
        kwargs.setdefault("serializer", JOB_SERIALIZER)
        kwargs.setdefault("worker_ttl", settings.worker_ttl_s)
        kwargs.setdefault("maintenance_interval", settings.worker_maintenance_interval_s)
        self.job_heartbeat_s = settings.job_heartbeat_s  # before RQ's __init__, which reads dequeue_timeout
        super().__init__(queues, connection=connection, **kwargs)
        self.context = WorkerContext.from_settings(settings)
        self.serves_captions = load_model
        self._model_fields: dict[str, str] = {}
        self._born = False
        self._beaten_at = float("-inf")
        self._abandoned_looked_at = float("-inf")
        if load_model:
            self.context.models.on_change = self._record_served_model
            captioner = self.context.models.load_initial()
            log.info("worker %s serves model %s", self.name, captioner.version)
        worker_context.install(self.context)

    def register_birth(self) -> None:
        self._take_over_dead_namesake()
        super().register_birth()
        self._born = True
        self._write_model_fields()

    def _take_over_dead_namesake(self) -> None:
        """RQ refuses a name whose registration has no death recorded; a worker SIGKILLed (or whose
        Redis was out at its end) leaves one until it expires. A namesake that has not beaten for
        3 × job_heartbeat_s is dead: its registration goes, waiting out that long at most."""
        stale_after_s = self.job_heartbeat_s * MISSED_HEARTBEATS
        beat, death = self.connection.hmget(self.key, ["last_heartbeat", "death"])
        if beat is None or death is not None:
            return
        silent_s = (now() - utcparse(beat.decode())).total_seconds()
        if silent_s <= stale_after_s:
            time.sleep(stale_after_s - silent_s + 1)
            if self.connection.hget(self.key, "last_heartbeat") != beat:
                return  # a live namesake: RQ refuses the name, as it should
        log.warning("worker %s: its namesake stopped beating %.0f s ago without a death; taking over its name",
                    self.name, max(silent_s, stale_after_s))
        with self.connection.pipeline() as pipeline:
            worker_registration.unregister(self, pipeline)
            pipeline.delete(self.key)
            pipeline.execute()

    def _through_outage(self, what: str, step: Callable[..., object], *args: object) -> None:
        """One step of RQ's loop, which ends the worker on any error: a Redis outage is logged in a
        line and waited out instead (dequeueing then retries the connection itself)."""
        try:
            step(*args)
        except REDIS_OUTAGES as error:
            log.warning("worker %s could not %s: Redis is unavailable (%s); carrying on", self.name, what, first_line(error))

    def set_state(self, state: str, pipeline=None) -> None:
        if pipeline is not None:
            super().set_state(state, pipeline)
            return
        self._through_outage(f"record its state ({state})", super().set_state, state)

    def check_for_suspension(self, burst: bool) -> None:
        self._through_outage("check for suspension", super().check_for_suspension, burst)

    def run_maintenance_tasks(self) -> None:
        self._through_outage("run its upkeep", super().run_maintenance_tasks)

    def heartbeat(self, timeout: int | None = None, pipeline=None) -> None:
        """RQ's heartbeat (idle, and just before each job), plus a look at the scheduler (see
        ThreadScheduler.revive) and at the active model version.

        With a pipeline it is the running job's heartbeat thread: no model check from there.
        """
        if pipeline is not None:
            super().heartbeat(timeout, pipeline)
            return
        try:
            self._beat(timeout)
        except REDIS_OUTAGES as error:
            log.warning("worker %s could not beat: Redis is unavailable (%s)", self.name, first_line(error))
            return
        if self.scheduler is not None:
            try:
                self.scheduler.revive(stale_after_s=self.job_heartbeat_s * MISSED_HEARTBEATS)
            except RedisError as error:
                log.warning("could not look after the scheduler: %s", error)
        if self.serves_captions:
            self.context.models.refresh()

    def _beat(self, timeout: int | None) -> None:
        """RQ's beat in one round trip instead of three, and none when the last was under half a job
        heartbeat ago: RQ beats before and after each job, which in a burst is several times a second."""
        if timeout is None and time.monotonic() - self._beaten_at < self.job_heartbeat_s / 2:
            return
        with self.connection.pipeline(transaction=False) as pipeline:
            super().heartbeat(timeout, pipeline)
            pipeline.execute()
        self._beaten_at = time.monotonic()

    def _record_served_model(self, serving: str | None, refused: dict[str, str], canary: str | None = None) -> None:
        """Shown by /models and `captionbot models`: which version each worker serves (and the
        loaded canary with its share), which it refused."""
        self._model_fields = {"model_version": serving or "", "model_refused": ",".join(sorted(refused)),
                              "model_canary": canary or ""}
        metrics.serving(serving, canary, self.context.models.encoder_runtime)
        if self._born:  # before its birth RQ would take an existing hash for a live namesake
            self._write_model_fields()

    def _write_model_fields(self) -> None:
        if self._model_fields:
            try:
                self.connection.hset(self.key, mapping=self._model_fields)
            except RedisError as error:
                log.warning("could not record the served model: %s", error)

    @property
    def dequeue_timeout(self) -> int:
        """An idle worker wakes every job heartbeat, so it finds an abandoned job within one beat."""
        return max(1, min(super().dequeue_timeout, self.job_heartbeat_s))

    @property
    def should_run_maintenance_tasks(self) -> bool:
        """RQ's schedule (every maintenance_interval), or at once when a dead worker's job waits:
        its retry, and the user's caption, must not wait for the next scheduled upkeep."""
        return super().should_run_maintenance_tasks or self._abandoned_job_waiting()

    def _abandoned_job_waiting(self) -> bool:
        """One cheap look per queue, at most every half job heartbeat (not before each job of a
        burst): a running job whose heartbeat has expired."""
        if time.monotonic() - self._abandoned_looked_at < self.job_heartbeat_s / 2:
            return False
        self._abandoned_looked_at = time.monotonic()
        now = current_timestamp()
        try:
            return any(
                self.connection.zrangebyscore(queue.started_job_registry.key, 0, now, start=0, num=1)
                for queue in self.queues
            )
        except RedisError as error:
            log.warning("could not look for abandoned jobs: %s", error)
            return False

    def handle_exception(self, job: Job, *exc_info) -> None:
        """A job that failed because Telegram, Redis or the database is out gets one WARNING line
        saying what comes next; anything else keeps RQ's ERROR with its traceback."""
        outage = outage_of(exc_info[1])
        if outage is None:
            super().handle_exception(job, *exc_info)
            return
        log.warning("%s", outage_line(job, outage))
        call_exception_handlers(self._exc_handlers, job, *exc_info)

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        return self.job_heartbeat_s * MISSED_HEARTBEATS

    def execute_job(self, job: Job, queue: Queue) -> None:
        execution = self.prepare_execution(job)
        finished = threading.Event()
        beat = threading.Thread(
            target=self._beat_while_running, args=(job, execution, finished), name="job-heartbeat", daemon=True
        )
        beat.start()
        try:
            self.perform_job(job, queue, execution)
        except REDIS_OUTAGES as error:
            log.warning("job %s: Redis went away while its end was recorded (%s); it is retried as abandoned "
                        "once Redis is back", job.id, first_line(error))
        finally:
            finished.set()
            beat.join()
        self.set_state(WorkerStatus.IDLE)

    def _beat_while_running(self, job: Job, execution: Execution, finished: threading.Event) -> None:
        while not finished.wait(self.job_heartbeat_s):
            try:
                self.maintain_heartbeats(job, execution)
            except RedisError as error:
                log.warning("job %s: heartbeat failed: %s", job.id, error)

    def _start_scheduler(
        self,
        burst: bool = False,
        logging_level: str | None = "INFO",
        date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
        log_format: str = DEFAULT_LOGGING_FORMAT,
    ) -> None:
        """As RQ's, but with the scheduler in a thread (see the module docstring)."""
        self.scheduler = ThreadScheduler(
            self.queues,
            connection=self.connection,
            logging_level=logging_level if logging_level is not None else self.log.level,
            date_format=date_format,
            log_format=log_format,
            serializer=self.serializer,
        )
        self.scheduler.acquire_locks()
        if not self.scheduler.acquired_locks:
            return
        if burst:
            try:
                self.scheduler.register_birth()
                self.scheduler.enqueue_scheduled_jobs()
            finally:
                self.scheduler.release_locks()
                self.scheduler.register_death()
        else:
            self.scheduler.start()

    def stop_scheduler(self) -> None:
        thread = self.scheduler._process if self.scheduler else None
        if thread is not None and thread.is_alive():
            self.scheduler._stop_requested = True
            thread.join(timeout=self.scheduler.interval + 5)

    def teardown(self) -> None:
        super().teardown()
        worker_context.install(None)
        self.context.close()
