"""The trainer's job: one retraining run, reported to the admin who asked for it.

/retrain answers at once and queues `retrain(requested_by, chat_id, message_id, lock_token)` on
the "training" queue. The job claims the retraining lock, runs `worker.retrain_version.retrain`, edits
that one message with its progress (features x/y, epoch k/n with loss and val BLEU-4) and ends
with a report: the metrics table against the active model, the data counts, whether it was
promoted, and the training curves as a photo. A failure, including a trainer killed mid-run
(RQ notices the lost job and calls `report_retrain_failure`), marks the run failed and says so;
the active model is never touched by a run that did not finish.
"""
from __future__ import annotations

import html
import logging
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from redis import Redis
from rq import get_current_job
from rq.exceptions import AbandonedJobError
from rq.job import Job
from rq.timeouts import JobTimeoutException

from service.model_versions import STOPPED_NOTE, is_in_training
from service.retrain_lock import LockKeeper, RetrainLock
from store.db import session_scope
from store.models import ModelStatus
from store.queries import get_model_version, set_model_status
from worker import context as worker_context
from worker.bot_api import BotApiClient, BotApiError

log = logging.getLogger(__name__)
ALREADY_RUNNING = "Another retraining is already running, so this one did not start."
STARTING = "Retraining: starting…"


class ProgressMessage:
    """One message, edited as the run goes; at most one edit per `interval_s` except when forced."""

    def __init__(self, bot_api: BotApiClient, chat_id: int, message_id: int | None, interval_s: float) -> None:
        self.bot_api, self.chat_id, self.message_id, self.interval_s = bot_api, chat_id, message_id, interval_s
        self.header = "Retraining"
        self.lines: dict[str, str] = {}  # one line per kind of progress (stage, features, epoch)
        self._shown = ""
        self._shown_at = 0.0

    def text(self) -> str:
        return "\n".join([self.header, *self.lines.values()])

    def update(self, kind: str, line: str, force: bool = False) -> None:
        self.lines[kind] = line
        if force or time.monotonic() - self._shown_at >= self.interval_s:
            self.show()

    def show(self, text: str | None = None) -> None:
        text = text or self.text()
        if text == self._shown:  # Telegram refuses an edit that changes nothing
            return
        try:
            if self.message_id is None:
                self.message_id = self.bot_api.send_message(self.chat_id, text)["message_id"]
            else:
                self.bot_api.edit_message_text(self.chat_id, self.message_id, text)
            self._shown, self._shown_at = text, time.monotonic()
        except BotApiError as error:  # progress is a courtesy: training goes on without it
            log.warning("could not show retraining progress: %s", error)


def retrain(requested_by: int | None = None, chat_id: int | None = None, message_id: int | None = None,
            lock_token: str | None = None) -> dict[str, Any]:
    """Run one retraining; returns a small summary (the job's result, kept as JSON)."""
    from training.promotion import describe_progress
    from worker.retrain_version import retrain as run_retrain

    ctx = worker_context.current()
    settings = ctx.settings
    job = get_current_job()
    progress = ProgressMessage(ctx.bot_api, chat_id or requested_by, message_id, settings.retrain_progress_interval_s)
    keeper = LockKeeper(RetrainLock(job.connection), lock_token or job.id, settings.retrain_lock_ttl_s)
    if not keeper.claim(requested_by=requested_by, job_id=job.id):
        progress.show(ALREADY_RUNNING)
        return {"status": "refused", "reason": "another retraining holds the lock"}
    progress.show(STARTING)

    def on_registered(version: str) -> None:
        job.meta["version"] = version
        job.save_meta()
        keeper.note(version=version)
        progress.header = f"Retraining {version}"

    def on_progress(event: dict) -> None:
        line = describe_progress(event)
        keeper.note(progress=line)
        progress.update(event.get("event", "stage"), line, force=event.get("event") == "stage")

    try:
        report = run_retrain(requested_by, settings=settings, on_progress=on_progress, on_registered=on_registered)
    finally:
        keeper.release()
    outcome = "a canary" if report.get("canary_fraction") else "promoted" if report["promoted"] else "not promoted"
    progress.lines["stage"] = f"Finished: {outcome}. The report follows."
    progress.show()
    send_report(ctx.bot_api, chat_id or requested_by, report)
    return {"status": "done", "version": report["version"], "promoted": report["promoted"], "decision": report["decision"]}


def send_report(bot_api: BotApiClient, chat_id: int | None, report: dict[str, Any]) -> None:
    """The report message (metrics table in a fixed-width block) and the training curves."""
    from training.promotion import format_report

    if chat_id is None:
        return
    summary, table = format_report(report)
    text = f"{html.escape(summary)}\n\n<pre>{html.escape(table)}</pre>"
    try:
        bot_api.call("sendMessage", {"chat_id": chat_id, "text": text, "parse_mode": "HTML"})
        curves = Path(report["curves_png"])
        bot_api.send_photo(chat_id, curves.read_bytes(), curves.name, caption=f"Training curves of {report['version']}")
    except (BotApiError, OSError) as error:
        log.warning("could not send the retraining report: %s", error)


def failure_reason(exc_type: type[BaseException] | None, exc_value: BaseException | None) -> str:
    """Words for the admin; the traceback stays in the trainer's log."""
    from training.retrain import RetrainError

    if exc_type is not None and issubclass(exc_type, AbandonedJobError):
        return "the trainer stopped in the middle of the run (killed or crashed)"
    if exc_type is not None and issubclass(exc_type, JobTimeoutException):
        return "it took longer than the retraining time limit"
    if isinstance(exc_value, RetrainError):
        return str(exc_value)
    return "an internal error (details are in the trainer's log)"


def report_retrain_failure(job: Job, connection: Redis, exc_type: type[BaseException] | None,
                           exc_value: BaseException | None, traceback: TracebackType | None) -> None:
    """RQ's on_failure callback, also run for a job whose trainer died: mark the run failed, free
    the lock, tell the admin. The active model was never changed by the run."""
    requested_by, chat_id, message_id, lock_token = (list(job.args) + [None] * 4)[:4]
    reason = failure_reason(exc_type, exc_value)
    version = job.meta.get("version")
    log.warning("retraining %s failed: %s", version or job.id, reason)
    ctx = worker_context.current()
    if version:
        with session_scope(ctx.session_factory) as session:
            model = get_model_version(session, version)
            if model is not None and is_in_training(model):
                note = STOPPED_NOTE if exc_type is not None and issubclass(exc_type, AbandonedJobError) else f"failed: {reason}"
                set_model_status(session, version, ModelStatus.failed, notes=note)
    RetrainLock(connection).release(lock_token or job.id)
    chat = chat_id or requested_by
    if chat is not None:
        progress = ProgressMessage(ctx.bot_api, chat, message_id, 0.0)
        progress.show(f"Retraining {version or ''} failed: {reason}. The active model is unchanged.".replace("  ", " "))
