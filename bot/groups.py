"""In groups the bot speaks only when asked: which messages ask it, and which it leaves alone.

A photo (or image document) is captioned when its caption mentions the bot (@username) or starts
with /caption, or when the group's admins turned /auto on. A text is read only as the answer to
the sender's own open ✏️ prompt; other chatter, and commands meant for other bots, get no answer.
Private chats are not affected: there every message is for the bot.
"""
from __future__ import annotations

import asyncio

from telegram import Chat, Message, MessageEntity
from telegram.ext import ContextTypes

from bot.auto_captions import auto_captions_on
from bot.state import runtime_of

CAPTION_COMMAND = "caption"


def in_group(chat: Chat | None) -> bool:
    return chat is not None and chat.type in (Chat.GROUP, Chat.SUPERGROUP)


def mentions_bot(message: Message, bot_username: str, bot_id: int) -> bool:
    """An @username mention of the bot (or a text mention of its id) in the text or caption."""
    kinds = [MessageEntity.MENTION, MessageEntity.TEXT_MENTION]
    found = {**message.parse_entities(kinds), **message.parse_caption_entities(kinds)}
    for entity, text in found.items():
        if entity.type == MessageEntity.TEXT_MENTION and entity.user is not None and entity.user.id == bot_id:
            return True
        if entity.type == MessageEntity.MENTION and text[1:].lower() == bot_username.lower():
            return True
    return False


def command_for_bot(command_text: str, command: str | None, bot_username: str) -> bool:
    """Whether `/cmd` or `/cmd@bot` is `command` (any command if None) and not meant for another bot."""
    name, _, addressee = command_text[1:].partition("@")
    if command is not None and name.lower() != command:
        return False
    return not addressee or addressee.lower() == bot_username.lower()


def caption_asks_for_caption(message: Message, bot_username: str) -> bool:
    """A photo sent with "/caption" (or "/caption@this_bot") as its caption."""
    commands = message.parse_caption_entities([MessageEntity.BOT_COMMAND])
    return any(
        entity.offset == 0 and command_for_bot(text, CAPTION_COMMAND, bot_username) for entity, text in commands.items()
    )


def addressed_to_bot(message: Message, bot_username: str, bot_id: int) -> bool:
    """A message in a group that speaks to the bot: it mentions it, or is a command explicitly for it."""
    if mentions_bot(message, bot_username, bot_id):
        return True
    commands = message.parse_entities([MessageEntity.BOT_COMMAND])
    return any(entity.offset == 0 and "@" in text and command_for_bot(text, None, bot_username) for entity, text in commands.items())


async def photo_wanted(message: Message, context: ContextTypes.DEFAULT_TYPE) -> bool:
    """Whether to caption this photo or document: always in a private chat; in a group when asked,
    or under /auto (then only what may be an image: a shared PDF is none of the bot's business)."""
    if not in_group(message.chat):
        return True
    bot = context.bot
    if mentions_bot(message, bot.username, bot.id) or caption_asks_for_caption(message, bot.username):
        return True
    if message.document is not None and not (message.document.mime_type or "").lower().startswith("image/"):
        return False
    return await asyncio.to_thread(auto_captions_on, runtime_of(context), message.chat_id)
