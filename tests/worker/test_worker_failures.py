"""What workers do when things go wrong: bad files end the request with a clear reply and no retry,
Telegram trouble is retried, the last failure is apologised for, and a worker killed mid-job has
its job finished by another worker within seconds; a request is done only once its reply got through.
Workers reach the sandbox through a proxy that can misbehave, and keep RQ's default upkeep schedule,
so the speed of recovery is the shipped one."""
from __future__ import annotations

import signal
import struct
import time
import zlib

import pytest
import redis
from rq.job import Job
from rq.serializers import JSONSerializer
from service_stack import jpeg_bytes, wait_until
from sqlalchemy import select

from service.runtime import caption_job_id
from store.models import Caption, CaptionRequest, RequestStatus

WORKERS = ("caption-worker-a", "caption-worker-b")
DEFAULT_UPKEEP = {"WORKER_TTL_S": "60", "WORKER_MAINTENANCE_INTERVAL_S": "30"}


@pytest.fixture(scope="module", autouse=True)
def workers(stack):
    for name in WORKERS:
        stack.start_worker(name, TELEGRAM_API_URL=stack.proxy.url, **DEFAULT_UPKEEP)
    stack.wait_for_workers(*WORKERS)


@pytest.fixture(autouse=True)
def calm_proxy(stack):
    stack.proxy.clear()
    yield
    stack.proxy.clear()


def request_for(stack, user_id: int, message_id: int) -> CaptionRequest:
    return stack.finished_request(user_id, message_id)


def png_header_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def huge_png(side: int = 30_000) -> bytes:
    """A real, complete side×side 1-bit PNG: small on disk, 900 megapixels when decoded."""
    row = b"\x00" * (1 + (side + 7) // 8)
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_header_chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
        + png_header_chunk(b"IDAT", body)
        + png_header_chunk(b"IEND", b"")
    )


def truncated_jpeg() -> bytes:
    data = jpeg_bytes(seed=11, size=(640, 480))
    return data[: len(data) // 2]


def pdf_bytes() -> bytes:
    return b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


BAD_FILES = {
    "corrupt jpeg": (truncated_jpeg, "photo.jpg", "image/jpeg", "damaged", "corrupt_image"),
    "pdf": (pdf_bytes, "report.pdf", "application/pdf", "can't read this file", "unsupported_format"),
    "pdf named as jpeg": (pdf_bytes, "photo.jpg", "image/jpeg", "can't read this file", "unsupported_format"),
    "25 MB document": (lambda: b"\xff\xd8\xff" + bytes(25 * 1024 * 1024), "big.jpg", "image/jpeg", "too big", "file_too_big"),
    "30000x30000 png": (huge_png, "huge.png", "image/png", "too many pixels", "image_too_large"),
}

# The bot refuses the others before anything is queued.
WORKER_REFUSES = {"corrupt jpeg", "pdf named as jpeg", "30000x30000 png"}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_file_gets_a_clear_reply_and_a_failed_request_with_its_reason_and_no_retry(stack, user_id, name):
    make, filename, mime_type, said, reason = BAD_FILES[name]
    sent = stack.client.send_document(user_id, make(), filename, mime_type)
    reply = stack.bot_says(user_id, said, timeout=30)
    assert "Traceback" not in reply["text"] and len(reply["text"]) < 200
    request = request_for(stack, user_id, sent["message_id"])
    assert (request.status, request.error_reason) == (RequestStatus.failed, reason)
    if name in WORKER_REFUSES:  # the job ended normally: no try was spent on a retry
        connection = redis.Redis.from_url(stack.env["REDIS_URL"])
        job = Job.fetch(caption_job_id(request.id), connection=connection, serializer=JSONSerializer)
        wait_until(lambda: job.get_status() == "finished", timeout=10, what="the job to end normally")
        assert job.retries_left == int(stack.env["JOB_RETRIES"])
        connection.close()


def test_a_corrupt_photo_is_refused_and_the_workers_keep_serving(stack, user_id):
    sent = stack.client.send_photo(user_id, truncated_jpeg())
    stack.bot_says(user_id, "damaged", timeout=30)
    assert request_for(stack, user_id, sent["message_id"]).error_reason == "corrupt_image"

    sent = stack.client.send_photo(user_id, jpeg_bytes(seed=12))
    reply = stack.reply_to(user_id, sent["message_id"], timeout=60)
    assert reply["reply_markup"]["inline_keyboard"]
    assert all(process.poll() is None for process in stack.workers.values())


def test_telegram_errors_during_a_job_are_retried_until_the_caption_arrives(stack, user_id):
    stack.proxy.fail("/getFile", times=2)
    sent = stack.client.send_photo(user_id, jpeg_bytes(seed=13))
    reply = stack.reply_to(user_id, sent["message_id"], timeout=60)
    assert reply["reply_markup"]["inline_keyboard"]
    assert request_for(stack, user_id, sent["message_id"]).status is RequestStatus.done
    assert sum("/getFile" in hit for hit in stack.proxy.hits) >= 3


def test_after_the_last_try_fails_the_user_gets_an_apology_and_the_request_its_reason(stack, user_id):
    stack.proxy.fail("/getFile", times=1 + int(stack.env["JOB_RETRIES"]))
    sent = stack.client.send_photo(user_id, jpeg_bytes(seed=14))
    apology = stack.reply_to(user_id, sent["message_id"], timeout=60)
    assert "couldn't describe this photo just now" in apology["text"]
    request = request_for(stack, user_id, sent["message_id"])
    assert (request.status, request.error_reason) == (RequestStatus.failed, "telegram_unavailable")


def test_a_worker_killed_mid_job_has_its_job_finished_by_another_worker_within_seconds(stack, user_id):
    stack.proxy.hold("/getFile", seconds=4.0)  # keeps the first try busy long enough to kill it
    sent = stack.client.send_photo(user_id, jpeg_bytes(seed=15))
    connection = redis.Redis.from_url(stack.env["REDIS_URL"])

    def running_job() -> Job | None:
        with stack.session() as session:
            request_id = session.scalar(
                select(CaptionRequest.id).where(
                    CaptionRequest.user_id == user_id, CaptionRequest.message_id == sent["message_id"]
                )
            )
        if request_id is None:
            return None
        job = Job.fetch(caption_job_id(request_id), connection=connection, serializer=JSONSerializer)
        return job if job.worker_name else None

    victim = wait_until(running_job, timeout=30, what="a worker to start the job").worker_name
    stack.workers[victim].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    stack.workers[victim].wait(timeout=10)

    reply = stack.reply_to(user_id, sent["message_id"], timeout=90)
    # Abandoned 3 heartbeats (3 s here) after its last beat; the idle survivor looks every beat,
    # not only at RQ's upkeep (every 30 s, and only when its 45 s wait for jobs ends).
    waited = time.monotonic() - killed
    assert waited < 12.0, f"answered {waited:.1f} s after the kill"
    assert reply["reply_markup"]["inline_keyboard"], "the caption, not an apology"
    assert request_for(stack, user_id, sent["message_id"]).status is RequestStatus.done
    survivor = next(name for name in WORKERS if name != victim)
    assert stack.workers[survivor].poll() is None
    assert "caption-request" in stack.worker_log(survivor)
    connection.close()


def hits_of(stack, path: str, since: int) -> int:
    return sum(path in hit for hit in stack.proxy.hits[since:])


def test_a_reply_that_never_gets_through_ends_the_request_failed_undeliverable_not_done(stack, user_id):
    tries = 1 + int(stack.env["JOB_RETRIES"])
    stack.proxy.fail("/sendMessage", times=tries + 1)  # every caption reply and the apology
    since = len(stack.proxy.hits)
    sent = stack.client.send_photo(user_id, jpeg_bytes(seed=16))
    request = request_for(stack, user_id, sent["message_id"])
    assert (request.status, request.error_reason) == (RequestStatus.failed, "undeliverable")
    wait_until(lambda: hits_of(stack, "/sendMessage", since) == tries + 1, 10, "the apology attempt")
    assert hits_of(stack, "/getFile", since) == 1, "retries send the stored caption, they do not caption again"
    with stack.session() as session:
        captions = session.scalars(select(Caption).where(Caption.request_id == request.id)).all()
        assert [caption.reply_message_id for caption in captions] == [None]
    assert stack.client.messages(user_id) == []


def test_a_reply_that_fails_once_is_sent_once_on_the_retry_and_only_then_done(stack, user_id):
    stack.proxy.fail("/sendMessage", times=1)
    since = len(stack.proxy.hits)
    sent = stack.client.send_photo(user_id, jpeg_bytes(seed=17))
    reply = stack.reply_to(user_id, sent["message_id"], timeout=60)
    request = request_for(stack, user_id, sent["message_id"])
    assert request.status is RequestStatus.done
    with stack.session() as session:
        caption = session.scalars(select(Caption).where(Caption.request_id == request.id)).one()
        assert caption.reply_message_id == reply["message_id"]
    assert hits_of(stack, "/getFile", since) == 1
    assert hits_of(stack, "/sendMessage", since) == 2
    replies = [m for m in stack.client.messages(user_id) if (m.get("reply_to_message") or {}).get("message_id") == sent["message_id"]]
    assert len(replies) == 1


def test_a_reply_telegram_refuses_fails_the_request_at_once_without_a_retry(stack, user_id):
    stack.proxy.fail("/sendMessage", times=2, status=403)  # "bot was blocked by the user": the reply and the apology
    since = len(stack.proxy.hits)
    sent = stack.client.send_photo(user_id, jpeg_bytes(seed=18))
    request = request_for(stack, user_id, sent["message_id"])
    assert (request.status, request.error_reason) == (RequestStatus.failed, "undeliverable")
    connection = redis.Redis.from_url(stack.env["REDIS_URL"])
    job = Job.fetch(caption_job_id(request.id), connection=connection, serializer=JSONSerializer)
    wait_until(lambda: job.get_status() == "finished", timeout=10, what="the job to end normally")
    assert job.retries_left == int(stack.env["JOB_RETRIES"])
    connection.close()
    assert hits_of(stack, "/sendMessage", since) == 2
