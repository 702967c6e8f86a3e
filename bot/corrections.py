"""Text messages: the answer to an open ✏️ prompt becomes a correction; any other text gets a hint.

In a group only the sender's own open prompt makes a text the bot's business: other chatter, and
commands meant for other bots, get no answer (a hint only when the message speaks to the bot).
"""
from __future__ import annotations

import asyncio
import logging

from telegram import Message, Update
from telegram.ext import ContextTypes

from bot import metrics, replies
from bot.feedback import MAX_CORRECTION_CHARS, correction_allowed, save_correction
from bot.flood_guard import text_allowed
from bot.groups import addressed_to_bot, in_group
from bot.prompts import prompt_answered
from bot.state import runtime_of
from service.runtime import REDIS_OUTAGES, Runtime
from store.outages import first_line

log = logging.getLogger(__name__)


def clean_correction(text: str | None) -> str:
    """The user's text with every run of whitespace (newlines, tabs) folded to one space."""
    return " ".join((text or "").split())


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    runtime = runtime_of(context)
    user_id = update.effective_user.id
    reply_to = message.reply_to_message.message_id if message.reply_to_message else None
    if in_group(message.chat):
        # Chatter is looked at first, so it neither counts against a limit nor hears about one.
        answered = await asyncio.to_thread(_group_prompt_answered, runtime, message.chat_id, user_id, reply_to)
        if answered is None:
            await _hint_if_addressed(message, user_id, context)
            return
        if not await text_allowed(message, user_id, runtime):
            return
    else:
        if not await text_allowed(message, user_id, runtime):
            return
        answered = await asyncio.to_thread(prompt_answered, runtime, message.chat_id, user_id, reply_to)
        if answered is None:
            await message.reply_text(replies.HINT)
            return
    text = clean_correction(message.text)
    if not text:
        metrics.refused("correction_empty")
        await message.reply_text(replies.CORRECTION_EMPTY)
        return
    if len(text) > MAX_CORRECTION_CHARS:
        metrics.refused("correction_too_long")
        await message.reply_text(replies.CORRECTION_TOO_LONG.format(limit=MAX_CORRECTION_CHARS))
        return
    if not await asyncio.to_thread(correction_allowed, runtime, user_id):
        metrics.refused("correction_rate_limited")
        await message.reply_text(replies.CORRECTION_RATE_LIMITED)  # the prompt stays open
        return
    token, caption_id = answered
    stored = await asyncio.to_thread(save_correction, runtime, message.chat_id, user_id, token, caption_id, text)
    await message.reply_text(replies.CORRECTION_SAVED if stored else replies.CORRECTION_EXPIRED)


def _group_prompt_answered(runtime: Runtime, chat_id: int, user_id: int, reply_to: int | None) -> tuple[str, int] | None:
    """prompt_answered, where a Redis outage means "no prompt": group chatter gets no apology."""
    try:
        return prompt_answered(runtime, chat_id, user_id, reply_to)
    except REDIS_OUTAGES as error:
        log.warning("could not look up ✏️ prompts in chat %s (%s); the text is left alone", chat_id, first_line(error))
        return None


async def _hint_if_addressed(message: Message, user_id: int | None, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A hint for a group message that speaks to the bot (within the sender's text limit)."""
    if not addressed_to_bot(message, context.bot.username, context.bot.id):
        return
    if user_id is None or await text_allowed(message, user_id, runtime_of(context)):
        await message.reply_text(replies.GROUP_HINT)


async def on_anything_else(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stickers, voice, unknown commands: a short hint at what works (they count as texts); in a
    group only for a message that speaks to the bot."""
    message = update.effective_message
    if message is None:
        return
    user = update.effective_user
    if in_group(message.chat):
        await _hint_if_addressed(message, user.id if user else None, context)
        return
    if user is not None and not await text_allowed(message, user.id, runtime_of(context)):
        return
    await message.reply_text(replies.HINT)
