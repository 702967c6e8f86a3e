"""The bot in group chats, through the sandbox's groups, the real bot and a real worker: it speaks
only when asked (/caption as a reply, a mention, or /auto turned on by an admin), leaves chatter
and other bots' commands alone, and lets every member rate and correct once each.

"No answer" is proved without sleeping: one user's updates are handled in order, so once the
bot has answered that user's later /help, everything they sent before it has been handled.
"""
from __future__ import annotations

import itertools

import redis
from service_stack import jpeg_bytes, wait_until
from sqlalchemy import select

from bot import replies
from bot.auto_captions import AUTO_KEY
from service.feedback_buttons import parse_callback_data
from store.models import CaptionRequest, Correction, Rating

_member_ids = itertools.count(60_001)
_group_ids = itertools.count(-7001, -1)


def new_group(stack, chat_type: str = "group", **statuses: str) -> tuple[int, dict[str, int]]:
    """A fresh group and fresh users, named by role: new_group(stack, admin="administrator", ...)."""
    chat_id = next(_group_ids)
    users = {role: next(_member_ids) for role in statuses}
    stack.client.create_group(chat_id, f"Group {-chat_id}", chat_type,
                              members={users[role]: status for role, status in statuses.items()})
    return chat_id, users


def bot_username(stack) -> str:
    return stack.client.bot_info()["bot"]["username"]


def reply_in(stack, chat_id: int, message_id: int, timeout: float = 60.0) -> dict:
    """The bot's first message in the chat replying to message `message_id`."""
    return stack.client.wait_for_message(
        chat_id, lambda m: (m.get("reply_to_message") or {}).get("message_id") == message_id, timeout=timeout
    )


def all_handled(stack, chat_id: int, user_id: int) -> dict:
    """Send /help as `user_id` and wait for its answer: the user's earlier messages are all handled."""
    sent = stack.client.send_text(user_id, "/help", chat_id=chat_id)
    return reply_in(stack, chat_id, sent["message_id"], timeout=15)


def requests_for(stack, chat_id: int, message_id: int) -> list[CaptionRequest]:
    with stack.session() as session:
        return session.scalars(
            select(CaptionRequest).where(CaptionRequest.chat_id == chat_id, CaptionRequest.message_id == message_id)
        ).all()


def caption_id_of(reply: dict) -> int:
    return parse_callback_data(reply["reply_markup"]["inline_keyboard"][0][0]["callback_data"]).caption_id


def test_chatter_and_commands_for_other_bots_get_no_answer_in_a_group(stack):
    chat_id, users = new_group(stack, member="member")
    member = users["member"]
    stack.client.send_text(member, "hello everyone, nice weather today", chat_id=chat_id)
    stack.client.send_text(member, "/start@other_bot", chat_id=chat_id)
    stack.client.send_text(member, "/caption@other_bot", chat_id=chat_id)
    stack.client.send_text(member, "/frobnicate", chat_id=chat_id)

    help_reply = all_handled(stack, chat_id, member)

    assert "/caption" in help_reply["text"] and "/auto on" in help_reply["text"]
    assert [m["message_id"] for m in stack.client.messages(chat_id)] == [help_reply["message_id"]]


def test_caption_as_a_reply_to_a_members_photo_captions_that_photo_in_reply_to_it(stack):
    chat_id, users = new_group(stack, poster="member", asker="member")
    photo = stack.client.send_photo(users["poster"], jpeg_bytes(seed=7101), chat_id=chat_id)
    ask = stack.client.send_text(users["asker"], "/caption", reply_to_message_id=photo["message_id"], chat_id=chat_id)

    reply = reply_in(stack, chat_id, photo["message_id"])

    assert reply["chat"]["id"] == chat_id and reply["text"].strip()
    assert [b["text"] for b in reply["reply_markup"]["inline_keyboard"][0]] == ["👍", "👎", "✏️", "🔍"]
    (request,) = requests_for(stack, chat_id, photo["message_id"])
    assert request.user_id == users["poster"]  # the photo stays its sender's: their /forget deletes it
    assert not any((m.get("reply_to_message") or {}).get("message_id") == ask["message_id"]
                   for m in stack.client.messages(chat_id))


def test_a_photo_whose_caption_mentions_the_bot_or_is_caption_is_captioned_in_a_supergroup(stack):
    chat_id, users = new_group(stack, "supergroup", member="member")
    mentioned = stack.client.send_photo(users["member"], jpeg_bytes(seed=7102),
                                        f"what is this, @{bot_username(stack)}?", chat_id=chat_id)
    commanded = stack.client.send_photo(users["member"], jpeg_bytes(seed=7108), "/caption", chat_id=chat_id)

    for photo in (mentioned, commanded):
        reply = reply_in(stack, chat_id, photo["message_id"])
        assert reply["reply_markup"]["inline_keyboard"][0][0]["callback_data"].startswith("r1:")
        assert requests_for(stack, chat_id, photo["message_id"])[0].user_id == users["member"]


def test_a_plain_photo_in_a_group_without_auto_is_not_captioned(stack):
    chat_id, users = new_group(stack, member="member")
    photo = stack.client.send_photo(users["member"], jpeg_bytes(seed=7103), "our holiday @someone_else", chat_id=chat_id)
    document = stack.client.send_document(users["member"], jpeg_bytes(seed=7104), "beach.jpg", "image/jpeg",
                                          chat_id=chat_id)

    help_reply = all_handled(stack, chat_id, users["member"])

    assert requests_for(stack, chat_id, photo["message_id"]) == []
    assert requests_for(stack, chat_id, document["message_id"]) == []
    assert [m["message_id"] for m in stack.client.messages(chat_id)] == [help_reply["message_id"]]
    assert stack.client.chat_actions(chat_id) == []


def test_auto_on_is_refused_to_a_member_and_turns_captions_on_for_an_admin(stack):
    chat_id, users = new_group(stack, admin="administrator", member="member")
    flag = redis.Redis.from_url(stack.env["REDIS_URL"])

    refused = stack.client.send_text(users["member"], "/auto on", chat_id=chat_id)
    assert reply_in(stack, chat_id, refused["message_id"], 15)["text"] == replies.AUTO_ADMINS_ONLY
    assert not flag.exists(AUTO_KEY.format(chat_id=chat_id))

    accepted = stack.client.send_text(users["admin"], "/auto on", chat_id=chat_id)
    assert reply_in(stack, chat_id, accepted["message_id"], 15)["text"] == replies.AUTO_ON
    photo = stack.client.send_photo(users["member"], jpeg_bytes(seed=7105), chat_id=chat_id)
    assert reply_in(stack, chat_id, photo["message_id"])["reply_markup"]["inline_keyboard"]

    switched_off = stack.client.send_text(users["admin"], "/auto off", chat_id=chat_id)
    assert reply_in(stack, chat_id, switched_off["message_id"], 15)["text"] == replies.AUTO_OFF
    assert not flag.exists(AUTO_KEY.format(chat_id=chat_id))
    flag.close()


def test_two_members_rate_the_same_caption_once_each_and_both_ratings_are_stored(stack):
    chat_id, users = new_group(stack, poster="member", first="member", second="member")
    photo = stack.client.send_photo(users["poster"], jpeg_bytes(seed=7106), f"@{bot_username(stack)}", chat_id=chat_id)
    reply = reply_in(stack, chat_id, photo["message_id"])
    caption_id = caption_id_of(reply)

    for user, value in [(users["first"], "up"), (users["second"], "up"), (users["second"], "down")]:
        query_id = stack.client.press_button(user, reply["message_id"], f"r1:{caption_id}:{value}", chat_id=chat_id)
        answer = stack.client.wait_for_callback_answer(query_id)
        assert answer["user_id"] == user and answer["text"] == replies.RATED[value]

    with stack.session() as session:
        ratings = session.scalars(select(Rating).where(Rating.caption_id == caption_id)).all()
        assert sorted((r.user_id, r.value) for r in ratings) == [(users["first"], "up"), (users["second"], "down")]
    shown = next(m for m in stack.client.messages(chat_id) if m["message_id"] == reply["message_id"])
    assert [b["text"] for b in shown["reply_markup"]["inline_keyboard"][0]] == ["👍", "👎", "✏️", "🔍"]


def test_a_correction_question_in_a_group_belongs_to_the_member_who_pressed_it(stack):
    chat_id, users = new_group(stack, corrector="member", other="member")
    photo = stack.client.send_photo(users["other"], jpeg_bytes(seed=7107), f"@{bot_username(stack)}", chat_id=chat_id)
    reply = reply_in(stack, chat_id, photo["message_id"])
    caption_id = caption_id_of(reply)

    stack.client.press_button(users["corrector"], reply["message_id"], f"r1:{caption_id}:fix", chat_id=chat_id)
    question = stack.client.wait_for_message(chat_id, lambda m: "better description" in (m.get("text") or ""),
                                             after_message_id=reply["message_id"])
    assert question["text"].startswith(f"Tester {users['corrector']},")
    cancel = question["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    refused = stack.client.press_button(users["other"], question["message_id"], cancel, chat_id=chat_id)
    assert stack.client.wait_for_callback_answer(refused)["text"] == replies.PROMPT_OF_ANOTHER_MEMBER
    stack.client.send_text(users["other"], "a cat on a sofa", reply_to_message_id=question["message_id"], chat_id=chat_id)
    all_handled(stack, chat_id, users["other"])
    stack.client.send_text(users["corrector"], "a red and green pattern", chat_id=chat_id)
    stack.client.wait_for_message(chat_id, lambda m: m.get("text") == replies.CORRECTION_SAVED,
                                  after_message_id=question["message_id"])

    with stack.session() as session:
        corrections = session.scalars(select(Correction).where(Correction.caption_id == caption_id)).all()
        assert [(c.user_id, c.text) for c in corrections] == [(users["corrector"], "a red and green pattern")]


def test_caption_without_a_photo_and_auto_outside_a_group_are_explained(stack, user_id):
    chat_id, users = new_group(stack, member="member")
    text = stack.client.send_text(users["member"], "just words", chat_id=chat_id)
    ask = stack.client.send_text(users["member"], "/caption", reply_to_message_id=text["message_id"], chat_id=chat_id)
    assert reply_in(stack, chat_id, ask["message_id"], 15)["text"] == replies.CAPTION_USAGE

    private = stack.client.send_text(user_id, "/auto on")
    assert stack.bot_says(user_id, "/auto is for groups", after=private["message_id"])["text"] == replies.AUTO_GROUPS_ONLY


def test_forget_in_the_private_chat_closes_the_members_correction_question_in_a_group(stack):
    chat_id, users = new_group(stack, member="member", poster="member")
    member = users["member"]  # corrects a caption of another member's photo, which outlives their /forget
    photo = stack.client.send_photo(users["poster"], jpeg_bytes(seed=7109), f"@{bot_username(stack)}", chat_id=chat_id)
    reply = reply_in(stack, chat_id, photo["message_id"])
    caption_id = caption_id_of(reply)
    stack.client.press_button(member, reply["message_id"], f"r1:{caption_id}:fix", chat_id=chat_id)
    stack.client.wait_for_message(chat_id, lambda m: "better description" in (m.get("text") or ""),
                                  after_message_id=reply["message_id"])

    stack.forget(member)
    late = stack.client.send_text(member, "a late answer", chat_id=chat_id)
    all_handled(stack, chat_id, member)

    with stack.session() as session:
        assert session.scalars(select(Correction).where(Correction.user_id == member)).all() == []
    assert not any((m.get("reply_to_message") or {}).get("message_id") == late["message_id"]
                   for m in stack.client.messages(chat_id))


def test_caption_asked_again_points_to_the_first_caption_and_a_failed_photo_is_captioned_again(stack):
    chat_id, users = new_group(stack, poster="member", asker="member", other="member")
    photo = stack.client.send_photo(users["poster"], jpeg_bytes(seed=7109), chat_id=chat_id)
    stack.client.send_text(users["asker"], "/caption", reply_to_message_id=photo["message_id"], chat_id=chat_id)
    caption = reply_in(stack, chat_id, photo["message_id"])
    wait_until(lambda: requests_for(stack, chat_id, photo["message_id"])[0].status.value == "done", timeout=15,
               what="the caption to be recorded as delivered")

    stack.client.send_text(users["other"], "/caption", reply_to_message_id=photo["message_id"], chat_id=chat_id)
    pointer = reply_in(stack, chat_id, caption["message_id"], timeout=15)

    assert pointer["text"] == replies.ALREADY_CAPTIONED
    assert len(requests_for(stack, chat_id, photo["message_id"])) == 1, "nothing captioned twice"

    damaged = stack.client.send_photo(users["poster"], jpeg_bytes(seed=7110)[:300], chat_id=chat_id)
    for attempt in (1, 2):
        stack.client.send_text(users["asker"], "/caption", reply_to_message_id=damaged["message_id"], chat_id=chat_id)
        wait_until(lambda: [r.status.value for r in requests_for(stack, chat_id, damaged["message_id"])]
                   == ["failed"] * attempt, timeout=60, what=f"failed request {attempt}")
