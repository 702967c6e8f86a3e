"""A try that fails because Telegram is out is logged in one WARNING line that says what happens
next, with no traceback; a job that fails on a bug keeps RQ's ERROR with its traceback. The worker
runs in this process (no model loaded: the download fails before any captioning) so its records
reach caplog."""
from __future__ import annotations

import logging

import redis
from service_stack import jpeg_bytes, wait_until
from sqlalchemy import select

from service.runtime import JOB_SERIALIZER
from service.settings import Settings
from store.models import CaptionRequest, RequestStatus
from worker.model_worker import ModelWorker


def in_process_worker(stack, name: str) -> tuple[ModelWorker, redis.Redis]:
    values = {key.lower(): value for key, value in stack.env.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    values.update(telegram_api_url=stack.proxy.url, job_retry_intervals_s="0")
    settings = Settings(_env_file=None, **values)
    connection = redis.Redis.from_url(stack.env["REDIS_URL"])
    return ModelWorker(["captions"], connection=connection, settings=settings, load_model=False, name=name), connection


def queued_request(stack, user_id: int, message_id: int) -> CaptionRequest:
    def recorded() -> CaptionRequest | None:
        with stack.session() as session:
            return session.scalars(
                select(CaptionRequest).where(CaptionRequest.user_id == user_id, CaptionRequest.message_id == message_id)
            ).one_or_none()

    return wait_until(recorded, timeout=30, what="the photo to be recorded")


def work_once(stack, request_id: int) -> bool:
    """Run a burst worker (its scheduler first moves retries that are due); True once the request failed."""
    worker, connection = in_process_worker(stack, "outage-log-worker")
    try:
        worker.work(burst=True, with_scheduler=True)
    finally:
        connection.close()
    with stack.session() as session:
        return session.get(CaptionRequest, request_id).status is RequestStatus.failed


def problems(caplog) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.levelno >= logging.WARNING]


def test_a_download_answering_500_logs_one_warning_line_per_try_and_no_traceback(stack, user_id, caplog):
    stack.proxy.fail("/file/", times=10, status=500)
    sent = stack.client.send_photo(user_id, jpeg_bytes(seed=41))
    request = queued_request(stack, user_id, sent["message_id"])
    try:
        with caplog.at_level(logging.INFO):
            wait_until(lambda: work_once(stack, request.id), timeout=60, what="the last try", interval=0.5)
    finally:
        stack.proxy.clear()

    job_lines = [r for r in problems(caplog) if f"caption-request-{request.id}" in r.getMessage()]
    assert [r.levelno for r in job_lines] == [logging.WARNING] * 3, [r.getMessage() for r in job_lines]
    assert all("file download: HTTP 500" in r.getMessage() for r in job_lines)
    assert ["retry 1 of 2" in job_lines[0].getMessage(), "retry 2 of 2" in job_lines[1].getMessage()] == [True, True]
    assert "no retries left: the request fails and the user gets an apology" in job_lines[2].getMessage()
    assert not [r for r in problems(caplog) if r.exc_info or "Traceback" in r.getMessage()]
    stack.bot_says(user_id, "couldn't describe this photo just now", timeout=30)
    with stack.session() as session:
        failed = session.get(CaptionRequest, request.id)
        assert (failed.status, failed.error_reason) == (RequestStatus.failed, "telegram_unavailable")


def test_a_job_failing_on_a_bug_keeps_its_traceback_at_error(stack, caplog):
    worker, connection = in_process_worker(stack, "bug-log-worker")
    try:
        job = worker.queues[0].enqueue("builtins.int", "not a number", description="a job with a bug")
        with caplog.at_level(logging.INFO):
            worker.work(burst=True, with_scheduler=False)
    finally:
        connection.close()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and job.id in r.getMessage()]
    assert errors and "Traceback" in errors[0].getMessage() and "ValueError" in errors[0].getMessage()
    assert not [r for r in caplog.records if r.levelno == logging.WARNING and job.id in r.getMessage()]


def test_with_the_database_out_through_the_last_try_the_user_is_still_told(stack, user_id, caplog):
    """The photo's chat travels in the job, so the apology needs no database."""
    from sqlalchemy.engine import make_url
    from tcp_gate import TcpGate

    sent = stack.client.send_photo(user_id, jpeg_bytes(seed=43))
    request = queued_request(stack, user_id, sent["message_id"])
    url = make_url(stack.env["DATABASE_URL"])
    gate = TcpGate(url.host or "127.0.0.1", url.port or 5432)  # never opened: the database is out
    values = {key.lower(): value for key, value in stack.env.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    values.update(telegram_api_url=stack.proxy.url, job_retry_intervals_s="0", database_connect_timeout_s=2,
                  database_url=url.set(host="127.0.0.1", port=gate.port).render_as_string(hide_password=False))
    told = f"request {request.id} failed after its last try and the database is unavailable"

    def last_try_ran() -> bool:  # a burst worker per round: its scheduler moves the retry that is due
        connection = redis.Redis.from_url(stack.env["REDIS_URL"])
        try:
            ModelWorker(["captions"], connection=connection, settings=Settings(_env_file=None, **values),
                        load_model=False, name="database-out-worker").work(burst=True, with_scheduler=True)
        finally:
            connection.close()
        return any(told in r.getMessage() for r in caplog.records)

    with caplog.at_level(logging.INFO):
        wait_until(last_try_ran, timeout=60, what="the last try", interval=0.5)
    stack.bot_says(user_id, "couldn't describe this photo just now", timeout=30)
