"""Redis or the database going away while people write: the bot says to try again shortly, keeps
running, and works again once they are back. Redis is a redis-server of this module's own, killed
and restarted; the database is the real PostgreSQL behind a TCP gate the test shuts and opens."""
from __future__ import annotations

import itertools

import pytest
from service_stack import jpeg_bytes, service_stack, wait_until
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from tcp_gate import TcpGate

from store.models import CaptionRequest

STORAGE_DOWN = "can't reach my storage"
_users = itertools.count(7001)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, service_model_bundle):
    """The bot alone (workers start when a test needs one), its database reached through a gate."""
    with service_stack(tmp_path_factory.mktemp("outages"), service_model_bundle) as stack:
        url = make_url(stack.env["DATABASE_URL"])
        gate = TcpGate(url.host or "127.0.0.1", url.port or 5432).open()
        stack.gate = gate
        stack.start_bot(database_url=url.set(host="127.0.0.1", port=gate.port).render_as_string(hide_password=False))
        yield stack
        gate.shut()


def requests_of(stack, user_id: int) -> int:
    with stack.session() as session:
        return session.scalar(select(func.count()).select_from(CaptionRequest).where(CaptionRequest.user_id == user_id))


def test_redis_down_when_a_photo_arrives_the_user_is_told_to_retry_and_after_it_returns_the_bot_works(stack):
    user_id = next(_users)
    stack.redis_server.stop()
    sent = stack.client.send_photo(user_id, jpeg_bytes(seed=21))
    stack.bot_says(user_id, STORAGE_DOWN, timeout=30, after=0)
    assert requests_of(stack, user_id) == 0

    stack.redis_server.start()
    stack.start_worker("caption-worker-after-outage")
    stack.wait_for_workers("caption-worker-after-outage")
    sent = stack.client.send_photo(user_id, jpeg_bytes(seed=22))
    reply = stack.reply_to(user_id, sent["message_id"], timeout=60)
    assert reply["reply_markup"]["inline_keyboard"]
    assert requests_of(stack, user_id) == 1


def test_database_down_the_user_is_told_to_retry_and_after_it_returns_the_bot_works(stack):
    user_id = next(_users)
    stack.gate.shut()
    try:
        stack.client.send_photo(user_id, jpeg_bytes(seed=23))
        stack.bot_says(user_id, STORAGE_DOWN, timeout=30)
        question, buttons = stack.ask_to_forget(user_id)  # the question needs only Redis
        query_id = stack.client.press_button(user_id, question["message_id"], buttons["Delete everything"])
        assert STORAGE_DOWN in stack.client.wait_for_callback_answer(query_id, timeout=30)["text"]
    finally:
        stack.gate.open()
    # The deletion failed, so the question stays open: the same button works now.
    stack.client.press_button(user_id, question["message_id"], buttons["Delete everything"])
    stack.bot_says(user_id, "nothing was stored about you", after=question["message_id"] - 1)

    sent = stack.client.send_photo(user_id, jpeg_bytes(seed=24))
    wait_until(lambda: requests_of(stack, user_id) == 1, timeout=30, what="the photo to be recorded")
    if stack.workers:  # the previous test left a worker running: the caption arrives too
        stack.reply_to(user_id, sent["message_id"], timeout=60)


def captioned_photo(stack, user_id: int, seed: int) -> dict:
    """The bot's caption reply to a new photo (a worker is started if none runs)."""
    if not stack.workers:
        stack.start_worker("caption-worker-buttons")
        stack.wait_for_workers("caption-worker-buttons")
    sent = stack.client.send_photo(user_id, jpeg_bytes(seed=seed))
    return stack.reply_to(user_id, sent["message_id"], timeout=60)


def test_a_button_pressed_while_the_database_is_down_is_still_answered(stack):
    user_id = next(_users)
    reply = captioned_photo(stack, user_id, 25)
    data = reply["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    stack.gate.shut()
    try:
        query_id = stack.client.press_button(user_id, reply["message_id"], data)
        answer = stack.client.wait_for_callback_answer(query_id, timeout=30)
        assert STORAGE_DOWN in answer["text"]
    finally:
        stack.gate.open()


def test_pencil_pressed_while_redis_is_down_is_told_the_question_could_not_be_opened_and_nothing_is_left_open(stack):
    """The prompt is stored before it is asked: no question goes out whose answer would be lost."""
    user_id = next(_users)
    reply = captioned_photo(stack, user_id, 26)
    caption_id = reply["reply_markup"]["inline_keyboard"][0][0]["callback_data"].split(":")[1]
    stack.redis_server.stop()
    try:
        query_id = stack.client.press_button(user_id, reply["message_id"], f"r1:{caption_id}:fix")
        answer = stack.client.wait_for_callback_answer(query_id, timeout=30)
        assert STORAGE_DOWN in answer["text"] and "couldn't ask for a better description" in answer["text"]
    finally:
        stack.redis_server.start()
    assert not any("better description?" in (m.get("text") or "") for m in stack.client.messages(user_id))
    sent = stack.client.send_text(user_id, "a dog on the grass")  # no prompt is open: the usual hint
    stack.bot_says(user_id, "Send me a photo", after=sent["message_id"], timeout=30)
