"""A caption worker captions the photos waiting in its queue together (worker/caption_batch.py),
while each request keeps its own job, result and reply: photos queued at once take fewer encoder
and search passes than photos, the next batch is captioned while the first one's replies go out,
a photo that cannot be decoded fails alone, a batch whose store fails or whose worker is killed
leaves nothing answered twice or unanswered, and batched captions equal one-at-a-time ones.

Photos are queued while the worker is stopped, so they wait together.
"""
from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest
import redis
from rq import Queue
from service_stack import jpeg_bytes, wait_until
from worker_stack import proxied_stack
from sqlalchemy import select

from store.models import Caption, CaptionRequest, RequestStatus

STORE_FAILS = "batch-worker-store-fails"

BATCH = 8
PASS_LINE = re.compile(r"captioned (\d+) photo\(s\) in one pass")
WORKER = "batch-worker-a"
STANDBY = "batch-worker-b"
SHIPPED_MODEL = Path(__file__).resolve().parents[2] / "models" / "default"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """The shipped model: an untrained one may give every photo the same caption, and then batched
    and one-at-a-time captions would be equal whatever the batching did."""
    with proxied_stack(tmp_path_factory.mktemp("service"), SHIPPED_MODEL) as stack:
        yield stack


@pytest.fixture(scope="module")
def connection(stack):
    client = redis.Redis.from_url(stack.env["REDIS_URL"])
    yield client
    client.close()


@pytest.fixture(scope="module", autouse=True)
def worker(stack):
    start_worker(stack, WORKER)


@pytest.fixture(autouse=True)
def calm_proxy(stack):
    stack.proxy.clear()
    yield
    stack.proxy.clear()


def start_worker(stack, name: str, **env: str) -> None:
    stack.start_worker(name, TELEGRAM_API_URL=stack.proxy.url, CAPTION_BATCH=str(BATCH), CAPTION_BATCH_WAIT_MS="200",
                       **env)
    stack.wait_for_workers(name)


def passes_since(stack, name: str, offset: int) -> list[int]:
    """The size of each captioning pass the worker logged after `offset` characters of its log."""
    return [int(size) for size in PASS_LINE.findall(stack.worker_log(name)[offset:])]


def send_together(stack, connection, photos: list[tuple[int, bytes]], worker: str = WORKER) -> list[dict]:
    """Each (user, photo) sent while the worker is stopped; it starts again once all are queued."""
    sent = queue_while_stopped(stack, connection, photos, worker)
    start_worker(stack, worker)
    return sent


def queue_while_stopped(stack, connection, photos: list[tuple[int, bytes]], worker: str = WORKER) -> list[dict]:
    stack.stop_worker(worker)
    queue = Queue("captions", connection=connection)
    before = queue.count
    sent = [stack.client.send_photo(user, photo) for user, photo in photos]
    wait_until(lambda: queue.count == before + len(photos), timeout=30, what="every photo to be queued")
    return sent


def request_ids(stack, users: list[int]) -> list[int]:
    with stack.session() as session:
        return list(session.scalars(select(CaptionRequest.id).where(CaptionRequest.user_id.in_(users))).all())


def assert_each_done_with_one_reply_and_one_caption(stack, users: list[int], sent: list[dict]) -> None:
    for user, message in zip(users, sent):
        request = stack.finished_request(user, message["message_id"], timeout=90)
        assert request.status is RequestStatus.done
        assert len(replies_to(stack, user, message["message_id"])) == 1
    with stack.session() as session:
        captions = session.scalars(select(Caption).where(Caption.request_id.in_(request_ids(stack, users)))).all()
    assert len(captions) == len(users) and all(caption.reply_message_id for caption in captions)


def replies_to(stack, user_id: int, message_id: int) -> list[dict]:
    return [m for m in stack.client.messages(user_id)
            if (m.get("reply_to_message") or {}).get("message_id") == message_id]


def test_twenty_photos_queued_at_once_take_fewer_passes_than_photos_and_each_gets_its_own_reply(stack, connection):
    users = list(range(6001, 6021))
    offset = len(stack.worker_log(WORKER))
    sent = send_together(stack, connection, [(user, jpeg_bytes(seed=100 + user)) for user in users])
    for user, message in zip(users, sent):
        stack.reply_to(user, message["message_id"], timeout=90)
    passes = passes_since(stack, WORKER, offset)
    assert sum(passes) == 20
    assert len(passes) <= 20 // BATCH + 2, passes  # a first photo may go alone before the rest arrive
    assert max(passes) == BATCH
    for user, message in zip(users, sent):
        replies = replies_to(stack, user, message["message_id"])
        assert len(replies) == 1 and replies[0]["reply_markup"]["inline_keyboard"]
        assert stack.finished_request(user, message["message_id"]).status is RequestStatus.done


def test_the_next_batch_is_captioned_while_the_first_batchs_replies_go_out_and_each_is_answered_once(stack, connection):
    users = list(range(6021, 6021 + 2 * BATCH))
    stack.proxy.hold("/sendMessage", seconds=1.0, times=BATCH)  # the first batch's replies go slowly
    offset = len(stack.worker_log(WORKER))
    sent = send_together(stack, connection, [(user, jpeg_bytes(seed=200 + user)) for user in users])
    wait_until(lambda: len(passes_since(stack, WORKER, offset)) == 2, timeout=60, what="the second pass")
    replied = sum(len(replies_to(stack, user, message["message_id"])) for user, message in zip(users, sent))
    assert replied < BATCH, "the second batch waited for the first one's replies"
    assert_each_done_with_one_reply_and_one_caption(stack, users, sent)
    assert passes_since(stack, WORKER, offset) == [BATCH, BATCH]


def test_a_batch_whose_store_fails_loses_no_request_and_answers_none_twice(stack, connection):
    users = list(range(6051, 6057))
    sent = queue_while_stopped(stack, connection, [(user, jpeg_bytes(seed=250 + user)) for user in users])
    locked = sorted(request_ids(stack, users))[3]
    holder = stack.runtime.session_factory()
    try:
        # A transaction of the test's holds one follower's row: the batch's store gives up on it
        # after the worker's 1 s statement timeout, and stores nothing of the batch.
        holder.execute(select(CaptionRequest.id).where(CaptionRequest.id == locked).with_for_update())
        start_worker(stack, STORE_FAILS, DATABASE_STATEMENT_TIMEOUT_S="1")
        wait_until(lambda: "statement timeout" in stack.worker_log(STORE_FAILS), timeout=60,
                   what="the batch's store to fail")
    finally:
        holder.rollback()
        holder.close()
    try:
        assert_each_done_with_one_reply_and_one_caption(stack, users, sent)
        passes = passes_since(stack, STORE_FAILS, 0)
        assert passes[0] > 1 and sum(passes) > len(users), passes  # the lost batch's photos were captioned again
    finally:
        stack.stop_worker(STORE_FAILS)
        start_worker(stack, WORKER)


def test_a_photo_that_cannot_be_decoded_fails_alone_and_the_rest_of_its_batch_gets_captions(stack, connection):
    users = list(range(6101, 6107))
    corrupt_user = users[3]
    photos = [(user, jpeg_bytes(seed=user)) for user in users]
    damaged = jpeg_bytes(seed=corrupt_user, size=(640, 480))
    photos[3] = (corrupt_user, damaged[: len(damaged) // 2])
    offset = len(stack.worker_log(WORKER))
    sent = send_together(stack, connection, photos)
    apology = stack.reply_to(corrupt_user, sent[3]["message_id"], timeout=60)
    assert "damaged" in apology["text"] and "Traceback" not in apology["text"]
    for user, message in zip(users, sent):
        request = stack.finished_request(user, message["message_id"])
        if user == corrupt_user:
            assert (request.status, request.error_reason) == (RequestStatus.failed, "corrupt_image")
        else:
            assert stack.reply_to(user, message["message_id"], timeout=60)["reply_markup"]["inline_keyboard"]
            assert request.status is RequestStatus.done
    assert passes_since(stack, WORKER, offset)[0] == len(users) - 1  # the damaged photo left out of the pass


def test_batched_captions_equal_the_captions_of_the_same_photos_sent_one_at_a_time(stack, connection):
    photos = [jpeg_bytes(seed=seed, size=(320 + 16 * seed, 240)) for seed in range(1, 7)]
    alone = []
    for index, photo in enumerate(photos):
        message = stack.client.send_photo(6201 + index, photo)
        alone.append(stack.reply_to(6201 + index, message["message_id"], timeout=60)["text"])
    assert len(set(alone)) > 1, "the photos must be told apart for this test to mean anything"
    users = [6211 + index for index in range(len(photos))]
    offset = len(stack.worker_log(WORKER))
    sent = send_together(stack, connection, list(zip(users, photos)))
    together = [stack.reply_to(user, message["message_id"], timeout=60)["text"] for user, message in zip(users, sent)]
    assert max(passes_since(stack, WORKER, offset)) > 1
    assert together == alone


def test_a_worker_killed_mid_batch_has_the_rest_answered_once_by_another(stack, connection):
    users = list(range(6301, 6309))  # a batch of four, then four more queued behind it
    offset = len(stack.worker_log(WORKER))
    stack.proxy.hold("/sendMessage", seconds=0.5, times=BATCH)  # the first replies go slowly
    sent = send_together(stack, connection, [(user, jpeg_bytes(seed=300 + user)) for user in users[:4]])
    wait_until(lambda: passes_since(stack, WORKER, offset), timeout=60, what="the first pass")
    first_batch_hits = len(stack.proxy.hits)
    # The next photos wait behind the first batch; their downloads will hang, so the worker dies mid-batch.
    stack.proxy.hold("/getFile", seconds=8.0, times=BATCH)
    sent += [stack.client.send_photo(user, jpeg_bytes(seed=300 + user)) for user in users[4:]]
    for user, message in zip(users[:4], sent[:4]):  # answered and marked done: the kill comes after
        assert stack.finished_request(user, message["message_id"], timeout=60).status is RequestStatus.done
    wait_until(lambda: any("/getFile" in hit for hit in stack.proxy.hits[first_batch_hits:]), timeout=30,
               what="the second batch's downloads")
    assert passes_since(stack, WORKER, offset) == [4]
    stack.workers[WORKER].send_signal(signal.SIGKILL)
    stack.workers.pop(WORKER).wait(timeout=10)
    stack.proxy.clear()
    start_worker(stack, STANDBY)
    assert_each_done_with_one_reply_and_one_caption(stack, users, sent)
