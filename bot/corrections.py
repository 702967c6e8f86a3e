"""Text messages: the answer to an open ✏️ prompt becomes a correction; any other text gets a hint."""
from __future__ import annotations

import asyncio

from telegram import Update
from telegram.ext import ContextTypes

from bot import replies
from bot.feedback import MAX_CORRECTION_CHARS, correction_allowed, save_correction
from bot.flood_guard import text_allowed
from bot.prompts import prompt_answered
from bot.state import runtime_of


def clean_correction(text: str | None) -> str:
    """The user's text with every run of whitespace (newlines, tabs) folded to one space."""
    return " ".join((text or "").split())


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    runtime = runtime_of(context)
    user_id = update.effective_user.id
    if not await text_allowed(message, user_id, runtime):
        return
    reply_to = message.reply_to_message.message_id if message.reply_to_message else None
    answered = await asyncio.to_thread(prompt_answered, runtime, message.chat_id, user_id, reply_to)
    if answered is None:
        await message.reply_text(replies.HINT)
        return
    text = clean_correction(message.text)
    if not text:
        await message.reply_text(replies.CORRECTION_EMPTY)
        return
    if len(text) > MAX_CORRECTION_CHARS:
        await message.reply_text(replies.CORRECTION_TOO_LONG.format(limit=MAX_CORRECTION_CHARS))
        return
    if not await asyncio.to_thread(correction_allowed, runtime, user_id):
        await message.reply_text(replies.CORRECTION_RATE_LIMITED)  # the prompt stays open
        return
    token, caption_id = answered
    stored = await asyncio.to_thread(save_correction, runtime, message.chat_id, user_id, token, caption_id, text)
    await message.reply_text(replies.CORRECTION_SAVED if stored else replies.CORRECTION_EXPIRED)


async def on_anything_else(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stickers, voice, unknown commands: a short hint at what works (they count as texts)."""
    message = update.effective_message
    if message is None:
        return
    if update.effective_user is not None and not await text_allowed(message, update.effective_user.id, runtime_of(context)):
        return
    await message.reply_text(replies.HINT)
