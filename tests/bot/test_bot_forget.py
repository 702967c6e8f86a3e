"""/forget asks first, through the sandbox Bot API and the real bot: "Keep" keeps everything,
"Delete everything" deletes it and says what it deleted in words; a press on an expired,
answered, forged or someone else's question is answered politely and deletes nothing."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from service_stack import jpeg_bytes
from sqlalchemy import func, select

from bot.forget_questions import QUESTION_KEY
from store.models import CaptionRequest, User

EXPIRED = "expired and I deleted nothing"


def photos_captioned(stack, user_id: int, seeds: list[int]) -> list[Path]:
    """The user sends these photos and each gets its caption; returns the stored files."""
    for seed in seeds:
        sent = stack.client.send_photo(user_id, jpeg_bytes(seed=seed))
        stack.reply_to(user_id, sent["message_id"], timeout=60)
    with stack.session() as session:
        return [Path(p) for p in session.scalars(select(CaptionRequest.media_path).where(CaptionRequest.user_id == user_id))]


def requests_kept(stack, user_id: int) -> int:
    with stack.session() as session:
        return session.scalar(select(func.count(CaptionRequest.id)).where(CaptionRequest.user_id == user_id))


def press_and_answer(stack, user_id: int, message_id: int, data: str, forge: bool = False) -> str:
    query_id = stack.client.press_button(user_id, message_id, data, forge=forge)
    return stack.client.wait_for_callback_answer(query_id, timeout=15).get("text") or ""


def test_forget_asks_first_and_keep_keeps_everything(stack, user_id):
    files = photos_captioned(stack, user_id, [4101])
    question, buttons = stack.ask_to_forget(user_id)
    assert list(buttons) == ["Delete everything", "Keep"]
    assert requests_kept(stack, user_id) == 1, "asking deletes nothing"

    press_and_answer(stack, user_id, question["message_id"], buttons["Keep"])
    stack.bot_says(user_id, "Kept: I deleted nothing", after=question["message_id"] - 1)
    # The question's buttons are gone; a client still showing them (or a forged press) finds it closed.
    answer = press_and_answer(stack, user_id, question["message_id"], buttons["Delete everything"], forge=True)
    assert EXPIRED in answer
    with stack.session() as session:
        assert session.get(User, user_id) is not None
    assert requests_kept(stack, user_id) == 1 and all(path.exists() for path in files)


@pytest.mark.parametrize(("photos", "words"), [
    (0, "Done: nothing was stored about you, so there was nothing to delete."),
    (1, "Done: I deleted 1 photo and everything else I kept about you."),
    (3, "Done: I deleted 3 photos and everything else I kept about you."),
])
def test_delete_everything_deletes_and_says_how_many_photos_in_words(stack, user_id, photos, words):
    files = photos_captioned(stack, user_id, [4200 + 10 * photos + i for i in range(photos)])
    assert len(files) == photos and all(path.exists() for path in files)

    done = stack.forget(user_id)

    assert done["text"] == words and "(s)" not in done["text"]
    assert "reply_markup" not in done or not done["reply_markup"].get("inline_keyboard"), "the buttons are gone"
    assert requests_kept(stack, user_id) == 0 and not any(path.exists() for path in files)
    with stack.session() as session:
        assert session.get(User, user_id) is None


def test_a_second_press_of_delete_everything_deletes_nothing_new(stack, user_id):
    photos_captioned(stack, user_id, [4301])
    question, buttons = stack.ask_to_forget(user_id)
    press_and_answer(stack, user_id, question["message_id"], buttons["Delete everything"])
    stack.bot_says(user_id, "I deleted 1 photo", after=question["message_id"] - 1)
    files = photos_captioned(stack, user_id, [4302])  # sent after the deletion

    answer = press_and_answer(stack, user_id, question["message_id"], buttons["Delete everything"], forge=True)

    assert EXPIRED in answer
    assert requests_kept(stack, user_id) == 1 and files[0].exists()


def test_an_expired_question_deletes_nothing(stack, user_id):
    files = photos_captioned(stack, user_id, [4401])
    question, buttons = stack.ask_to_forget(user_id)
    token = buttons["Delete everything"].split(":")[1]
    key = QUESTION_KEY.format(chat_id=user_id, user_id=user_id, token=token)
    redis = stack.runtime.redis
    assert 0 < redis.pttl(key) <= stack.settings.forget_confirmation_ttl_s * 1000
    redis.pexpire(key, 1)  # as if FORGET_CONFIRMATION_TTL_S had passed

    for choice in ("Delete everything", "Keep"):
        assert EXPIRED in press_and_answer(stack, user_id, question["message_id"], buttons[choice])

    assert requests_kept(stack, user_id) == 1 and files[0].exists()


def test_forged_or_someone_elses_forget_presses_delete_nothing(stack, user_id):
    files = photos_captioned(stack, user_id, [4501])
    question, buttons = stack.ask_to_forget(user_id)
    neighbour = user_id + 300_000
    _, neighbours_buttons = stack.ask_to_forget(neighbour)
    forged = [
        neighbours_buttons["Delete everything"],  # a real question, but the neighbour's
        "f1:00000000:delete",  # a question never asked
        buttons["Delete everything"].replace("f1:", "f0:"),  # an old version
        buttons["Delete everything"].replace(":delete", ":yes"),
        "f1:delete",
    ]
    for data in forged:
        assert EXPIRED in press_and_answer(stack, user_id, question["message_id"], data, forge=True), data
    assert requests_kept(stack, user_id) == 1 and files[0].exists()

    # The genuine button still works after all that.
    press_and_answer(stack, user_id, question["message_id"], buttons["Delete everything"])
    stack.bot_says(user_id, "I deleted 1 photo", after=question["message_id"] - 1)
    assert requests_kept(stack, user_id) == 0


def test_forget_is_no_one_tap_chip_in_the_command_menu(stack):
    """The menu is set when polling starts (run_polling calls post_init; the test bot starts otherwise)."""
    from bot.application import build_application

    async def set_commands() -> None:
        application = build_application(stack.settings, stack.runtime)
        async with application:
            await application.post_init(application)

    asyncio.run(set_commands())
    assert [command["command"] for command in stack.client.bot_info()["commands"]] == ["start", "help"]
