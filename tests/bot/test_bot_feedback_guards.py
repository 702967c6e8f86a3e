"""Feedback people cannot abuse, through the sandbox Bot API, the real bot and a real worker: the ✏️
prompt can be cancelled, corrections have a rate limit, and admins can list one user's feedback and
keep it out of training (/feedback, /exclude, /include)."""
from __future__ import annotations

import time

from service_stack import ADMIN_ID, jpeg_bytes
from sqlalchemy import func, select
from test_bot_conversation import answer_to, send_photo_and_wait_for_caption

from captioning.text import Vocabulary
from service.feedback_buttons import parse_cancel_callback_data
from store.feedback import feedback_examples
from store.models import Correction, User
from training.feedback_screen import FeedbackRules, screen_feedback


def corrections_of(stack, user_id: int) -> list[str]:
    with stack.session() as session:
        return list(session.scalars(select(Correction.text).where(Correction.user_id == user_id).order_by(Correction.id)))


def open_prompt(stack, user_id: int, reply: dict, caption_id: int) -> dict:
    """Press ✏️ under the caption; returns the bot's question (after any earlier message)."""
    latest = max(m["message_id"] for m in stack.client.messages(user_id))
    answer_to(stack, stack.client.press_button(user_id, reply["message_id"], f"r1:{caption_id}:fix"))
    return stack.bot_says(user_id, "better description", after=latest)


def cancel_data(prompt: dict) -> str:
    return prompt["reply_markup"]["inline_keyboard"][0][0]["callback_data"]


def test_cancel_closes_the_prompt_and_a_text_afterwards_is_not_stored_as_a_correction(stack, user_id):
    _, reply, caption_id = send_photo_and_wait_for_caption(stack, user_id, jpeg_bytes(seed=301))
    prompt = open_prompt(stack, user_id, reply, caption_id)
    assert [b["text"] for b in prompt["reply_markup"]["inline_keyboard"][0]] == ["Cancel"]
    assert parse_cancel_callback_data(cancel_data(prompt)).caption_id == caption_id

    answer_to(stack, stack.client.press_button(user_id, prompt["message_id"], cancel_data(prompt)))
    stack.bot_says(user_id, "Cancelled", after=prompt["message_id"] - 1)  # the question, edited
    sent = stack.client.send_text(user_id, "a brown dog on the grass")
    stack.bot_says(user_id, "Send me a photo", after=sent["message_id"])
    sent = stack.client.send_text(user_id, "a black dog on the grass", reply_to_message_id=prompt["message_id"])
    stack.bot_says(user_id, "Send me a photo", after=sent["message_id"])

    assert corrections_of(stack, user_id) == []


def test_a_forged_or_stale_cancel_is_answered_politely_and_leaves_the_prompt_open(stack, user_id):
    _, reply, caption_id = send_photo_and_wait_for_caption(stack, user_id, jpeg_bytes(seed=302))
    prompt = open_prompt(stack, user_id, reply, caption_id)
    real = parse_cancel_callback_data(cancel_data(prompt))
    forged = [
        f"x1:{caption_id}:00000000",  # another prompt's token
        f"x1:{caption_id + 1}:{real.prompt_token}",  # another caption
        f"x0:{caption_id}:{real.prompt_token}",  # an old version
        f"x1:{caption_id}:{real.prompt_token.upper()}",  # not what the bot writes
    ]
    for data in forged:
        answer = answer_to(stack, stack.client.press_button(user_id, prompt["message_id"], data, forge=True))
        assert "already closed" in answer["text"], data

    sent = stack.client.send_text(user_id, "a dog catches a ball")
    stack.bot_says(user_id, "I saved your description", after=sent["message_id"])
    assert corrections_of(stack, user_id) == ["a dog catches a ball"], "the prompt stayed open"

    answer = answer_to(stack, stack.client.press_button(user_id, prompt["message_id"], cancel_data(prompt)))
    assert "already closed" in answer["text"], "a Cancel after the answer is stale"
    assert corrections_of(stack, user_id) == ["a dog catches a ball"]


def test_corrections_over_the_rate_limit_are_answered_with_a_wait_and_not_stored(stack, user_id):
    limit = stack.settings.correction_rate_limit_per_minute
    _, reply, caption_id = send_photo_and_wait_for_caption(stack, user_id, jpeg_bytes(seed=303))
    if time.time() % 60 > 40:  # the limit counts per calendar minute: start inside one
        time.sleep(61 - time.time() % 60)
    for i in range(limit):
        open_prompt(stack, user_id, reply, caption_id)
        sent = stack.client.send_text(user_id, f"a dog in a field number {'i' * (i + 1)}")
        stack.bot_says(user_id, "I saved your description", after=sent["message_id"])

    open_prompt(stack, user_id, reply, caption_id)
    sent = stack.client.send_text(user_id, "one correction too many")
    stack.bot_says(user_id, "wait a minute", after=sent["message_id"])

    assert len(corrections_of(stack, user_id)) == limit
    assert "one correction too many" not in corrections_of(stack, user_id)


def admin_says(stack, command: str, contains: str) -> str:
    sent = stack.client.send_text(ADMIN_ID, command)
    return stack.bot_says(ADMIN_ID, contains, after=sent["message_id"])["text"]


def correct(stack, user_id: int, seed: int, text: str) -> tuple[dict, int]:
    _, reply, caption_id = send_photo_and_wait_for_caption(stack, user_id, jpeg_bytes(seed=seed))
    open_prompt(stack, user_id, reply, caption_id)
    sent = stack.client.send_text(user_id, text)
    stack.bot_says(user_id, "I saved your description", after=sent["message_id"])
    return reply, caption_id


def trained_on(stack, user_id: int) -> list[str]:
    """The user's corrections a retraining would learn from."""
    with stack.session() as session:
        examples = feedback_examples(session)
    kept, _ = screen_feedback(examples, FeedbackRules(Vocabulary("a dog red ball on grass".split())))
    return [e.text for e in kept if e.user_id == user_id]


def test_exclude_keeps_a_users_feedback_out_of_training_include_brings_it_back_and_others_are_refused(stack, user_id):
    correct(stack, user_id, 304, "a red ball on grass")
    assert trained_on(stack, user_id) == ["a red ball on grass"]

    assert "only the bot's admins" in admin_says_as(stack, user_id, f"/exclude {user_id}")
    assert trained_on(stack, user_id) == ["a red ball on grass"]

    admin_says(stack, f"/exclude {user_id}", "left out of training")
    assert trained_on(stack, user_id) == []
    assert corrections_of(stack, user_id) == ["a red ball on grass"], "excluded, not deleted"
    assert "only the bot's admins" in admin_says_as(stack, user_id, f"/include {user_id}")
    assert trained_on(stack, user_id) == []

    admin_says(stack, f"/include {user_id}", "counts for training again")
    assert trained_on(stack, user_id) == ["a red ball on grass"]
    assert "nothing from user 424242" in admin_says(stack, "/exclude 424242", "424242")
    assert "Usage" in admin_says(stack, "/exclude someone", "Usage")
    with stack.session() as session:
        assert session.scalar(select(func.count()).select_from(User).where(User.telegram_id == 424242)) == 0


def admin_says_as(stack, user_id: int, command: str) -> str:
    sent = stack.client.send_text(user_id, command)
    return stack.client.wait_for_message(user_id, lambda m: m["message_id"] > sent["message_id"], timeout=15)["text"]


def test_feedback_lists_a_users_ratings_and_corrections_newest_first_with_counts(stack, user_id):
    reply, caption_id = correct(stack, user_id, 305, "a dog with a red ball")
    answer_to(stack, stack.client.press_button(user_id, reply["message_id"], f"r1:{caption_id}:up"))
    time.sleep(0.05)
    correct(stack, user_id, 306, "a dog on grass")

    text = admin_says(stack, f"/feedback {user_id}", f"user {user_id}")

    assert "1 👍, 0 👎, 2 corrections" in text and "counts for training" in text
    lines = text.splitlines()[1:]
    assert [line.split(" ")[2] for line in lines] == ["✏️", "👍", "✏️"], text
    assert "“a dog on grass”" in lines[0] and "“a dog with a red ball”" in lines[2]
    assert "only the bot's admins" in admin_says_as(stack, user_id, f"/feedback {user_id}")
    admin_says(stack, f"/exclude {user_id}", "left out")
    assert "excluded from training since" in admin_says(stack, f"/feedback {user_id}", f"user {user_id}")
