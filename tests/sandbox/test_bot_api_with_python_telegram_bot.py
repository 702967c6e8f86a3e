"""The sandbox speaks the Bot API well enough for python-telegram-bot itself: a real telegram.Bot
over HTTP against the sandbox, users driven through SandboxClient."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest
from sandbox_helpers import jpeg_bytes, make_bot
from telegram import (
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    ReplyParameters,
)
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, Conflict, EndPointNotFound, InvalidToken

USER = 4242


def run(coroutine):
    return asyncio.run(coroutine)


async def _with_bot(sandbox, body, token: str | None = None):
    async with make_bot(sandbox, token) as bot:
        return await body(bot)


def keyboard(caption_id: int = 7) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[
        InlineKeyboardButton("👍", callback_data=f"r1:{caption_id}:up"),
        InlineKeyboardButton("👎", callback_data=f"r1:{caption_id}:down"),
    ]])


def test_get_me_returns_the_sandbox_bot(sandbox):
    me = run(_with_bot(sandbox, lambda bot: bot.get_me()))
    assert me.is_bot and me.id == 123456 and me.username == "captionbot_sandbox_bot"


def test_wrong_token_is_refused_as_invalid(sandbox):
    with pytest.raises(InvalidToken):
        run(_with_bot(sandbox, lambda bot: bot.get_me(), token="999:wrong"))


def test_unknown_method_is_not_found(sandbox):
    async def body(bot):
        with pytest.raises(EndPointNotFound):
            await bot.do_api_request("sendTeleportation", api_kwargs={"chat_id": USER})

    run(_with_bot(sandbox, body))


def test_get_updates_long_poll_waits_the_whole_timeout_when_nothing_arrives(sandbox):
    async def body(bot):
        started = time.monotonic()
        updates = await bot.get_updates(timeout=1.5)
        return updates, time.monotonic() - started

    updates, elapsed = run(_with_bot(sandbox, body))
    assert updates == () and 1.4 <= elapsed < 4


def test_get_updates_returns_as_soon_as_an_update_is_injected(sandbox, client):
    inject = threading.Timer(0.5, client.send_text, args=(USER, "hello"))

    async def body(bot):
        started = time.monotonic()
        inject.start()
        updates = await bot.get_updates(timeout=20)
        return updates, time.monotonic() - started

    updates, elapsed = run(_with_bot(sandbox, body))
    inject.join()
    assert 0.4 <= elapsed < 3
    assert [u.message.text for u in updates] == ["hello"]
    assert updates[0].message.from_user.id == updates[0].message.chat.id == USER


def test_offset_confirms_updates_and_confirmed_ones_are_dropped(sandbox, client):
    for text in ("one", "two", "three"):
        client.send_text(USER, text)

    async def body(bot):
        first = await bot.get_updates(timeout=0)
        again = await bot.get_updates(timeout=0)
        rest = await bot.get_updates(offset=first[1].update_id + 1, timeout=0)
        after_all = await bot.get_updates(offset=rest[-1].update_id + 1, timeout=0)
        return first, again, rest, after_all

    first, again, rest, after_all = run(_with_bot(sandbox, body))
    assert [u.message.text for u in first] == ["one", "two", "three"]
    assert [u.update_id for u in again] == [u.update_id for u in first]  # not confirmed yet
    assert [u.message.text for u in rest] == ["three"]
    assert after_all == () and client.pending_updates() == []


def test_a_second_get_updates_ends_a_waiting_one_with_conflict(sandbox):
    async def body(bot):
        waiting = asyncio.create_task(bot.get_updates(timeout=10))
        await asyncio.sleep(0.3)
        async with make_bot(sandbox) as second_instance:
            await second_instance.get_updates(timeout=0)
        with pytest.raises(Conflict):
            await waiting

    run(_with_bot(sandbox, body))


def test_commands_are_a_command_entity_for_command_handlers(sandbox, client):
    client.send_text(USER, "/start now")
    updates = run(_with_bot(sandbox, lambda bot: bot.get_updates(timeout=0)))
    message = updates[0].message
    assert message.parse_entities() and message.text.startswith("/start")
    assert message.entities[0].type == "bot_command" and message.entities[0].length == len("/start")


def test_photo_has_thumbnail_and_full_size_and_downloads_the_same_bytes(sandbox, client):
    photo = jpeg_bytes(640, 480)
    client.send_photo(USER, photo, caption="my cat")

    async def body(bot):
        message = (await bot.get_updates(timeout=0))[0].message
        largest = message.photo[-1]
        file = await bot.get_file(largest.file_id)
        return message, file, bytes(await file.download_as_bytearray())

    message, file, downloaded = run(_with_bot(sandbox, body))
    thumbnail, full = message.photo
    assert message.caption == "my cat"
    assert max(thumbnail.width, thumbnail.height) == 90 and thumbnail.file_size < full.file_size
    assert (full.width, full.height, full.file_size) == (640, 480, len(photo))
    assert downloaded == photo and file.file_size == len(photo)
    assert file.file_path.startswith(sandbox.file_base)


def test_file_unique_id_depends_on_the_content_only(sandbox, client):
    same = [client.send_photo(USER, jpeg_bytes()) for _ in range(2)]
    other = client.send_photo(USER, jpeg_bytes(color=(0, 0, 255)))
    unique = [m["photo"][-1]["file_unique_id"] for m in (*same, other)]
    assert unique[0] == unique[1] != unique[2]


def test_document_carries_name_type_and_size_and_downloads(sandbox, client):
    data = b"%PDF-1.4 not really"
    client.send_document(USER, data, "report.pdf", "application/pdf")

    async def body(bot):
        document = (await bot.get_updates(timeout=0))[0].message.document
        file = await bot.get_file(document)
        return document, bytes(await file.download_as_bytearray())

    document, downloaded = run(_with_bot(sandbox, body))
    assert (document.file_name, document.mime_type, document.file_size) == ("report.pdf",
                                                                            "application/pdf", len(data))
    assert downloaded == data


def test_file_over_20_mb_fails_get_file_with_bad_request(sandbox, client):
    big = client.send_document(USER, b"\0" * (25 * 1024 * 1024), "big.jpg", "image/jpeg")

    async def body(bot):
        with pytest.raises(BadRequest, match="(?i)file is too big"):
            await bot.get_file(big["document"]["file_id"])

    run(_with_bot(sandbox, body))


def test_send_message_with_inline_keyboard_as_a_reply_appears_in_messages(sandbox, client):
    sent = client.send_photo(USER, jpeg_bytes())

    async def body(bot):
        return await bot.send_message(USER, "a red square", reply_markup=keyboard(),
                                      reply_parameters=ReplyParameters(sent["message_id"]))

    reply = run(_with_bot(sandbox, body))
    assert reply.reply_to_message.message_id == sent["message_id"] and reply.from_user.is_bot
    [shown] = client.messages(USER)
    assert shown["text"] == "a red square" and shown["message_id"] == reply.message_id
    assert shown["reply_to_message"]["photo"][-1]["file_id"] == sent["photo"][-1]["file_id"]
    assert [b["callback_data"] for b in shown["reply_markup"]["inline_keyboard"][0]] == [
        "r1:7:up", "r1:7:down"]


def test_unknown_chat_and_missing_reply_target_are_bad_requests(sandbox, client):
    client.send_text(USER, "hi")

    async def body(bot):
        with pytest.raises(BadRequest, match="(?i)chat not found"):
            await bot.send_message(31337, "hello?")
        with pytest.raises(BadRequest, match="(?i)message to be replied not found"):
            await bot.send_message(USER, "hello?", reply_parameters=ReplyParameters(999))
        with pytest.raises(BadRequest, match="(?i)message to edit not found"):
            await bot.edit_message_text("x", chat_id=USER, message_id=999)
        return await bot.send_message(
            USER, "still sent",
            reply_parameters=ReplyParameters(999, allow_sending_without_reply=True))

    assert run(_with_bot(sandbox, body)).reply_to_message is None


def test_edit_message_reply_markup_is_applied_and_an_unchanged_edit_is_refused(sandbox, client):
    client.send_text(USER, "hi")
    chosen = InlineKeyboardMarkup([[InlineKeyboardButton("👍 ✓", callback_data="r1:7:up")]])

    async def body(bot):
        message = await bot.send_message(USER, "caption", reply_markup=keyboard())
        edited = await bot.edit_message_reply_markup(USER, message.message_id, reply_markup=chosen)
        with pytest.raises(BadRequest, match="(?i)message is not modified"):
            await bot.edit_message_reply_markup(USER, message.message_id, reply_markup=chosen)
        return edited

    edited = run(_with_bot(sandbox, body))
    assert edited.edit_date is not None
    [shown] = client.messages(USER)
    assert shown["reply_markup"]["inline_keyboard"] == [[{"text": "👍 ✓", "callback_data": "r1:7:up"}]]


def test_edit_message_text_without_markup_drops_the_keyboard_and_parses_html(sandbox, client):
    client.send_text(USER, "hi")

    async def body(bot):
        message = await bot.send_message(USER, "thinking…", reply_markup=keyboard())
        return await bot.edit_message_text("<b>a dog</b> &amp; a ball", chat_id=USER,
                                           message_id=message.message_id,
                                           parse_mode=ParseMode.HTML)

    edited = run(_with_bot(sandbox, body))
    assert edited.text == "a dog & a ball" and edited.reply_markup is None
    assert edited.entities[0].type == "bold" and edited.entities[0].length == len("a dog")
    assert "reply_markup" not in client.messages(USER)[0]


def test_press_button_delivers_a_callback_query_and_the_answer_is_recorded(sandbox, client):
    client.send_text(USER, "hi")

    async def send(bot):
        await bot.get_updates(timeout=0)
        return await bot.send_message(USER, "caption", reply_markup=keyboard())

    message = run(_with_bot(sandbox, send))
    query_id = client.press_button(USER, message.message_id, "r1:7:down")

    async def answer(bot):
        updates = await bot.get_updates(offset=-1, timeout=0)
        query = updates[-1].callback_query
        await query.answer("Thanks!")
        with pytest.raises(BadRequest, match="(?i)query ID is invalid"):
            await query.answer("twice")
        return query

    query = run(_with_bot(sandbox, answer))
    assert (query.id, query.data, query.from_user.id) == (query_id, "r1:7:down", USER)
    assert query.message.message_id == message.message_id
    [recorded] = client.callback_answers()
    assert recorded["callback_query_id"] == query_id and recorded["text"] == "Thanks!"
    assert (recorded["user_id"], recorded["message_id"], recorded["data"]) == (
        USER, message.message_id, "r1:7:down")


def test_a_button_not_on_the_keyboard_is_pressed_only_when_forged(sandbox, client):
    client.send_text(USER, "hi")
    message = run(_with_bot(sandbox, lambda bot: bot.send_message(USER, "c", reply_markup=keyboard())))
    with pytest.raises(Exception, match="forge"):
        client.press_button(USER, message.message_id, "r1:999:up")
    assert client.press_button(USER, message.message_id, "r1:999:up", forge=True)
    assert client.pending_updates()[-1]["callback_query"]["data"] == "r1:999:up"


def test_force_reply_prompt_is_shown_and_the_users_answer_replies_to_it(sandbox, client):
    client.send_text(USER, "hi")
    prompt = run(_with_bot(sandbox, lambda bot: bot.send_message(
        USER, "Send a better description", reply_markup=ForceReply(input_field_placeholder="a dog…"))))
    shown = client.messages(USER)[-1]
    assert shown["sandbox"]["reply_markup"]["force_reply"] is True and "reply_markup" not in shown
    client.send_text(USER, "a brown dog", reply_to_message_id=prompt.message_id)

    updates = run(_with_bot(sandbox, lambda bot: bot.get_updates(offset=-1, timeout=0)))
    answer = updates[-1].message
    assert answer.text == "a brown dog" and answer.reply_to_message.message_id == prompt.message_id
    assert answer.reply_to_message.from_user.is_bot


def test_chat_actions_commands_and_deleted_messages(sandbox, client):
    client.send_text(USER, "hi")

    async def body(bot):
        from telegram import BotCommand

        await bot.send_chat_action(USER, ChatAction.TYPING)
        await bot.set_my_commands([BotCommand("start", "what this bot does")])
        message = await bot.send_message(USER, "gone soon")
        await bot.delete_message(USER, message.message_id)
        with pytest.raises(BadRequest, match="(?i)message to delete not found"):
            await bot.delete_message(USER, message.message_id)
        return await bot.get_my_commands()

    commands = run(_with_bot(sandbox, body))
    assert [c.command for c in commands] == ["start"]
    assert [a["action"] for a in client.chat_actions(USER)] == ["typing"]
    assert client.messages(USER) == []
    assert client.bot_info()["commands"] == [{"command": "start", "description": "what this bot does"}]


def test_send_photo_by_upload_and_by_file_id(sandbox, client):
    client.send_text(USER, "hi")
    png = jpeg_bytes(300, 200)

    async def body(bot):
        uploaded = await bot.send_photo(USER, png, caption="curves")
        again = await bot.send_photo(USER, uploaded.photo[-1].file_id)
        with pytest.raises(BadRequest, match="(?i)wrong file identifier"):
            await bot.send_photo(USER, "no-such-file-id")
        file = await bot.get_file(uploaded.photo[-1])
        return uploaded, again, bytes(await file.download_as_bytearray())

    uploaded, again, downloaded = run(_with_bot(sandbox, body))
    assert uploaded.caption == "curves" and len(uploaded.photo) == 2
    assert again.photo[-1].file_unique_id == uploaded.photo[-1].file_unique_id
    assert downloaded == png


def test_delete_webhook_can_drop_pending_updates(sandbox, client):
    client.send_text(USER, "old news")

    async def body(bot):
        info = await bot.get_webhook_info()
        await bot.delete_webhook(drop_pending_updates=True)
        return info, await bot.get_updates(timeout=0)

    info, updates = run(_with_bot(sandbox, body))
    assert info.url == "" and info.pending_update_count == 1 and updates == ()
