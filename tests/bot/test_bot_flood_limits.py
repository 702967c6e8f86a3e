"""Per-user limits on button presses and texts, through the sandbox Bot API, the real bot and a real
worker: a user over the limit gets a short polite answer, and nothing they sent is stored."""
from __future__ import annotations

import time

import pytest
from service_stack import jpeg_bytes, service_stack
from sqlalchemy import func, select
from test_bot_conversation import answer_to, send_photo_and_wait_for_caption

from service.attention_maps import attention_job_id
from store.models import Correction, Rating

BUTTON_LIMIT = 4
TEXT_LIMIT = 3


@pytest.fixture(scope="module")
def stack(tmp_path_factory, service_model_bundle):
    with service_stack(tmp_path_factory.mktemp("flood"), service_model_bundle) as stack:
        stack.start_bot(button_rate_limit_per_minute=BUTTON_LIMIT, text_rate_limit_per_minute=TEXT_LIMIT)
        stack.start_worker("caption-worker-flood")
        stack.wait_for_workers("caption-worker-flood")
        yield stack


def start_of_a_minute() -> None:
    """The limits count per calendar minute: start well inside one."""
    if time.time() % 60 > 40:
        time.sleep(61 - time.time() % 60)


def press(stack, user_id: int, message_id: int, data: str) -> str:
    return answer_to(stack, stack.client.press_button(user_id, message_id, data)).get("text") or ""


def ratings_of(stack, user_id: int) -> list[str]:
    with stack.session() as session:
        return list(session.scalars(select(Rating.value).where(Rating.user_id == user_id)))


def test_button_presses_over_the_limit_are_answered_slow_down_and_change_nothing(stack, user_id):
    _, reply, caption_id = send_photo_and_wait_for_caption(stack, user_id, jpeg_bytes(seed=501))
    start_of_a_minute()
    for _ in range(BUTTON_LIMIT):
        assert "Slow down" not in press(stack, user_id, reply["message_id"], f"r1:{caption_id}:up")
    assert ratings_of(stack, user_id) == ["up"]

    assert "Slow down" in press(stack, user_id, reply["message_id"], f"r1:{caption_id}:down")
    assert "Slow down" in press(stack, user_id, reply["message_id"], f"r1:{caption_id}:fix")
    assert "Slow down" in press(stack, user_id, reply["message_id"], f"a1:{caption_id}")
    assert ratings_of(stack, user_id) == ["up"]
    assert stack.runtime.redis.exists(f"rq:job:{attention_job_id(caption_id)}") == 0, "🔍 queued nothing"
    assert not any("better description" in (m.get("text") or "") for m in stack.client.messages(user_id))


def test_texts_over_the_limit_get_one_polite_answer_then_silence_and_are_not_stored(stack, user_id):
    _, reply, caption_id = send_photo_and_wait_for_caption(stack, user_id, jpeg_bytes(seed=502))
    start_of_a_minute()
    for i in range(TEXT_LIMIT):
        sent = stack.client.send_text(user_id, f"hello {i}")
        stack.bot_says(user_id, "Send me a photo", after=sent["message_id"])
    press(stack, user_id, reply["message_id"], f"r1:{caption_id}:fix")
    stack.bot_says(user_id, "better description")

    sent = stack.client.send_text(user_id, "a dog running on the grass")
    stack.bot_says(user_id, "a lot of messages", after=sent["message_id"])
    ignored = stack.client.send_text(user_id, "a dog running on wet grass")
    # One user's updates are handled in order: once this press is answered, the text before it was handled.
    press(stack, user_id, reply["message_id"], f"r1:{caption_id}:up")
    assert [m["text"] for m in stack.client.messages(user_id) if m["message_id"] > ignored["message_id"]] == []
    with stack.session() as session:
        assert session.scalar(select(func.count()).select_from(Correction).where(Correction.user_id == user_id)) == 0
