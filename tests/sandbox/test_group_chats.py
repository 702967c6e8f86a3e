"""Group chats in the sandbox, as python-telegram-bot sees them: several users in one chat with a
negative id, getChatMember with their statuses, replies, @mention and bot_command entities, and
button presses answered as the member who pressed."""
from __future__ import annotations

import asyncio

import pytest
from sandbox_helpers import jpeg_bytes, make_bot
from telegram import (
    BotCommand,
    BotCommandScopeAllGroupChats,
    Chat,
    ChatMember,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    MessageEntity,
    Update,
)
from telegram.error import BadRequest

from sandbox.client import SandboxError

GROUP = -4001
OWNER, ADMIN, MEMBER, LEFT = 41, 42, 43, 44


def run(coroutine):
    return asyncio.run(coroutine)


@pytest.fixture
def group(client):
    client.create_group(GROUP, "Holiday photos",
                        members={OWNER: "creator", ADMIN: "administrator", MEMBER: "member", LEFT: "left"})
    return GROUP


def test_get_chat_member_reports_each_members_status_as_ptb_types(sandbox, client, group):
    client.send_text(7, "hi")  # a user the sandbox knows, in no group

    async def body():
        async with make_bot(sandbox) as bot:
            members = {user: await bot.get_chat_member(group, user) for user in (OWNER, ADMIN, MEMBER, LEFT, 7)}
            with pytest.raises(BadRequest, match="(?i)user not found"):
                await bot.get_chat_member(group, 999_999)
            return members, await bot.get_chat_member(7, 7)

    members, private = run(body())
    assert {user: member.status for user, member in members.items()} == {
        OWNER: ChatMember.OWNER, ADMIN: ChatMember.ADMINISTRATOR, MEMBER: ChatMember.MEMBER,
        LEFT: ChatMember.LEFT, 7: ChatMember.LEFT,
    }
    assert members[ADMIN].can_delete_messages and members[ADMIN].user.id == ADMIN
    assert private.status == ChatMember.MEMBER


def test_messages_from_several_members_reach_the_bot_from_one_group_with_replies_and_entities(sandbox, client, group):
    photo = client.send_photo(MEMBER, jpeg_bytes(), "look @captionbot_sandbox_bot", chat_id=group)
    client.send_text(ADMIN, "/caption@captionbot_sandbox_bot", reply_to_message_id=photo["message_id"], chat_id=group)
    client.send_text(555, "a newcomer joins by writing", chat_id=group)

    async def body():
        async with make_bot(sandbox) as bot:
            return [Update.de_json(u, bot) for u in client.pending_updates()]

    first, second, third = run(body())
    assert first.effective_chat.type == Chat.GROUP and first.effective_chat.id == GROUP < 0
    assert first.effective_chat.title == "Holiday photos" and first.effective_user.id == MEMBER
    assert list(first.message.parse_caption_entities([MessageEntity.MENTION]).values()) == ["@captionbot_sandbox_bot"]
    assert second.effective_user.id == ADMIN and second.message.reply_to_message.photo[-1].width == 400
    assert list(second.message.parse_entities([MessageEntity.BOT_COMMAND]).values()) == ["/caption@captionbot_sandbox_bot"]
    assert second.message.parse_entities([MessageEntity.MENTION]) == {}  # a command's @bot is no mention
    assert third.effective_user.id == 555
    assert {m["user"]["id"]: m["status"] for m in client.chat(group)["members"]}[555] == "member"


def test_the_bot_replies_in_the_group_and_a_press_comes_from_the_member_who_pressed(sandbox, client, group):
    photo = client.send_photo(MEMBER, jpeg_bytes(), chat_id=group)

    async def send():
        async with make_bot(sandbox) as bot:
            markup = InlineKeyboardMarkup([[InlineKeyboardButton("👍", callback_data="r1:1:up")]])
            return await bot.send_message(group, "a caption", reply_to_message_id=photo["message_id"], reply_markup=markup)

    sent = run(send())
    client.press_button(OWNER, sent.message_id, "r1:1:up", chat_id=group)
    client.press_button(ADMIN, sent.message_id, "r1:1:up", chat_id=group)
    presses = [u["callback_query"] for u in client.pending_updates() if "callback_query" in u]

    assert sent.chat.id == group and sent.reply_to_message.message_id == photo["message_id"]
    assert [(p["from"]["id"], p["message"]["chat"]["id"]) for p in presses] == [(OWNER, group), (ADMIN, group)]


def test_groups_refuse_what_telegram_would(client, group):
    with pytest.raises(SandboxError, match="not a member"):
        client.send_text(LEFT, "let me back in", chat_id=group)
    with pytest.raises(SandboxError, match="must be negative"):
        client.create_group(12, "positive")
    with pytest.raises(SandboxError, match="chat not found"):
        client.send_text(MEMBER, "hello?", chat_id=-999)
    client.send_text(MEMBER, "hi")
    with pytest.raises(SandboxError, match="private chat"):
        client.send_text(OWNER, "not my chat", chat_id=MEMBER)
    with pytest.raises(SandboxError, match="status must be"):
        client.set_member_status(group, MEMBER, "king")


def test_commands_set_for_group_chats_are_listed_beside_the_default_ones(sandbox, client):
    async def body():
        async with make_bot(sandbox) as bot:
            await bot.set_my_commands([BotCommand("start", "hello")])
            before = client.bot_info()["group_commands"]
            await bot.set_my_commands([BotCommand("caption", "describe")], scope=BotCommandScopeAllGroupChats())
            return before

    before = run(body())
    info = client.bot_info()
    assert before == info["commands"] == [{"command": "start", "description": "hello"}]
    assert info["group_commands"] == [{"command": "caption", "description": "describe"}]
