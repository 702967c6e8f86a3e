"""/forget at any moment of a photo's life leaves nothing of the user behind: no row, no file, no
reply, and no traceback in the worker, whether it comes before the job starts, while the photo
is downloaded, kept or captioned, or while the reply is on its way. A photo someone else also
sent stays theirs."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis
from rq.job import Job
from rq.serializers import JSONSerializer
from service_stack import jpeg_bytes, wait_until
from sqlalchemy import func, select

from service.runtime import REPLY_TO_META
from store.models import Caption, CaptionRequest, User
from worker.media import MediaStore

WORKER = "caption-worker-forget"
FORGET_AFTER_MS = (0, 50, 100, 500)


@pytest.fixture(scope="module", autouse=True)
def worker(stack):
    stack.start_worker(WORKER, TELEGRAM_API_URL=stack.proxy.url)
    stack.wait_for_workers(WORKER)


@pytest.fixture(autouse=True)
def calm_proxy(stack):
    stack.proxy.clear()
    yield
    stack.proxy.clear()


def caption_jobs(stack) -> set[str]:
    connection = redis.Redis.from_url(stack.env["REDIS_URL"])
    keys = {key.decode().removeprefix("rq:job:") for key in connection.scan_iter("rq:job:caption-request-*")}
    connection.close()
    return keys


def jobs_naming(stack, chat_id: int) -> list[str]:
    """The caption jobs in Redis whose meta holds this chat (where the reply was to go)."""
    connection = redis.Redis.from_url(stack.env["REDIS_URL"])
    jobs = Job.fetch_many(sorted(caption_jobs(stack)), connection=connection, serializer=JSONSerializer)
    connection.close()
    return [job.id for job in jobs if job is not None and (job.meta.get(REPLY_TO_META) or [None])[0] == chat_id]


def wait_for_jobs_to_end(stack, job_ids: set[str]) -> None:
    """Until each job finished or failed for good (a retry waiting is neither)."""
    connection = redis.Redis.from_url(stack.env["REDIS_URL"])

    def ended() -> bool:
        jobs = Job.fetch_many(list(job_ids), connection=connection, serializer=JSONSerializer)
        return all(job is not None and job.get_status() in ("finished", "failed") for job in jobs)

    wait_until(ended, timeout=60, what=f"jobs {sorted(job_ids)} to end", interval=0.1)
    connection.close()


def send_photo_then_forget(stack, user_id: int, photo: bytes, forget_after_ms: float) -> set[str]:
    """The user sends a photo and confirms /forget after a pause (asked before the photo, so the
    pause alone says when the deletion comes); returns the photo's job if /forget left it (it was
    not over yet), once it has ended."""
    before = caption_jobs(stack)
    question, buttons = stack.ask_to_forget(user_id)
    stack.client.send_photo(user_id, photo)
    time.sleep(forget_after_ms / 1000)
    stack.client.press_button(user_id, question["message_id"], buttons["Delete everything"])
    stack.bot_says(user_id, "I deleted 1 photo and", after=question["message_id"] - 1)
    # The bot enqueued the photo before it took /forget (one user's updates in order): the job is
    # there unless it had ended by then, and /forget deleted it.
    jobs = caption_jobs(stack) - before
    wait_for_jobs_to_end(stack, jobs)
    return jobs


def stored_file(stack, photo: bytes) -> Path:
    return MediaStore(stack.settings.resolved_media_dir).locate(photo).path


def assert_nothing_kept_of(stack, user_id: int, photo: bytes, log_start: int) -> None:
    with stack.session() as session:
        assert session.get(User, user_id) is None
        assert session.scalar(select(func.count(CaptionRequest.id)).where(CaptionRequest.user_id == user_id)) == 0
        assert session.scalar(
            select(func.count(Caption.id)).join(CaptionRequest).where(CaptionRequest.user_id == user_id)
        ) == 0
    assert not stored_file(stack, photo).exists()
    assert not jobs_naming(stack, user_id), "no caption job in Redis says whose photo it was"
    log = stack.worker_log(WORKER)[log_start:]
    assert "Traceback" not in log and "LookupError" not in log, log[-3000:]
    said = [message.get("text") or "" for message in stack.client.messages(user_id)]
    assert not [text for text in said if "Sorry" in text], said


def assert_only_the_neighbours_file_kept(stack, user_id: int, neighbour: int, photo: bytes, log_start: int) -> None:
    with stack.session() as session:
        assert session.get(User, user_id) is None
        neighbours = session.scalars(select(CaptionRequest.media_path).where(CaptionRequest.user_id == neighbour)).all()
    assert neighbours == [str(stored_file(stack, photo))]
    assert stored_file(stack, photo).exists(), "the neighbour's photo stays"
    assert "Traceback" not in stack.worker_log(WORKER)[log_start:]


def log_length(stack) -> int:
    return len(stack.worker_log(WORKER))


@pytest.mark.parametrize("forget_after_ms", FORGET_AFTER_MS)
def test_forget_right_after_a_photo_leaves_no_row_no_file_and_no_traceback(stack, user_id, forget_after_ms):
    photo = jpeg_bytes(seed=1000 + forget_after_ms)
    log_start = log_length(stack)
    jobs = send_photo_then_forget(stack, user_id, photo, forget_after_ms)
    connection = redis.Redis.from_url(stack.env["REDIS_URL"])
    statuses = [job.get_status() for job in Job.fetch_many(list(jobs), connection=connection, serializer=JSONSerializer)]
    connection.close()
    assert statuses in (["finished"], []), "the job ends quietly, it does not fail (or, over before /forget, is deleted)"
    assert_nothing_kept_of(stack, user_id, photo, log_start)


@pytest.mark.parametrize("forget_after_ms", FORGET_AFTER_MS)
def test_forget_right_after_a_photo_someone_else_also_sent_keeps_their_file(stack, user_id, forget_after_ms):
    photo = jpeg_bytes(seed=2000 + forget_after_ms)
    neighbour = user_id + 300_000
    sent = stack.client.send_photo(neighbour, photo)
    stack.reply_to(neighbour, sent["message_id"], timeout=60)
    log_start = log_length(stack)
    send_photo_then_forget(stack, user_id, photo, forget_after_ms)
    assert_only_the_neighbours_file_kept(stack, user_id, neighbour, photo, log_start)


def test_forget_while_the_photo_downloads_keeps_nothing(stack, user_id):
    stack.proxy.hold("/getFile", seconds=1.5)
    photo = jpeg_bytes(seed=3000)
    log_start = log_length(stack)
    send_photo_then_forget(stack, user_id, photo, forget_after_ms=300)
    assert_nothing_kept_of(stack, user_id, photo, log_start)
    assert "was forgotten" in stack.worker_log(WORKER)[log_start:]


def test_forget_while_the_caption_is_on_its_way_takes_the_reply_back(stack, user_id):
    stack.proxy.hold("/sendMessage", seconds=1.5)
    photo = jpeg_bytes(seed=3001)
    log_start = log_length(stack)

    def captioned() -> bool:
        with stack.session() as session:
            return bool(session.scalar(
                select(func.count(Caption.id)).join(CaptionRequest).where(CaptionRequest.user_id == user_id)
            ))

    before = caption_jobs(stack)
    stack.client.send_photo(user_id, photo)
    wait_until(captioned, timeout=30, what="the caption to be stored")
    stack.forget(user_id)
    wait_for_jobs_to_end(stack, caption_jobs(stack) - before)
    assert_nothing_kept_of(stack, user_id, photo, log_start)
    said = [message.get("text") for message in stack.client.messages(user_id)]
    assert len(said) == 1 and "I deleted 1 photo and" in said[0], "the caption sent meanwhile was deleted"
