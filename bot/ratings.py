"""The buttons under a caption: 👍 and 👎 store a rating and mark it; ✏️ asks for a better caption
(with a Cancel button under the question: bot/correction_prompt.py).

Every callback query is answered, exactly once, even when the press changes nothing. In a group
every member rates once (a member's rating replaces only their own) and the buttons stay unmarked;
a ✏️ question belongs to the member who pressed it.
"""
from __future__ import annotations

import asyncio
import logging

from telegram import CallbackQuery, ReplyParameters, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from bot import metrics, replies
from bot.canary_admin import settle_after_rating
from bot.feedback import ButtonMessage, caption_exists_behind, rate_caption
from bot.flood_guard import accepted_press
from bot.groups import in_group
from bot.prompts import attach_prompt_message, close_prompt, open_prompt
from bot.keyboards import correction_prompt_markup, feedback_markup
from bot.state import runtime_of
from service.feedback_buttons import FeedbackPress, parse_callback_data
from service.runtime import REDIS_OUTAGES, Runtime
from store.outages import first_line

log = logging.getLogger(__name__)


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    press = await accepted_press(query, runtime_of(context), parse_callback_data, replies.STALE_BUTTON)
    if press is None:
        return
    where = ButtonMessage(chat_id=query.message.chat.id, message_id=query.message.message_id)
    if press.action == "fix":
        await _ask_for_correction(query, context, press, where)
    else:
        await _rate(query, context, press, where)


async def _rate(query: CallbackQuery, context: ContextTypes.DEFAULT_TYPE, press: FeedbackPress, where: ButtonMessage) -> None:
    runtime = runtime_of(context)
    model_version = await asyncio.to_thread(rate_caption, runtime, press.caption_id, query.from_user.id, where, press.action)
    if model_version is None:
        metrics.refused("stale_button")
        await query.answer(replies.STALE_BUTTON)
        return
    metrics.rated(model_version, press.action)
    await query.answer(replies.RATED[press.action])
    # In a group every member rates on the same buttons: marking one member's choice would mislead the rest.
    if not in_group(query.message.chat):
        await _mark_choice(query, press)
    await settle_after_rating(context.bot, runtime)  # this rating may be the one a canary waited for


async def _mark_choice(query: CallbackQuery, press: FeedbackPress) -> None:
    try:
        await query.edit_message_reply_markup(reply_markup=feedback_markup(press.caption_id, chosen=press.action))
    except BadRequest as error:
        # Pressing the same choice twice leaves the buttons as they are; Telegram says so.
        if "not modified" not in str(error).lower():
            raise


async def _ask_for_correction(query: CallbackQuery, context: ContextTypes.DEFAULT_TYPE, press: FeedbackPress, where: ButtonMessage) -> None:
    """Store the prompt, then ask: if Redis fails, the user hears the question could not be opened,
    rather than get a question whose answer would be lost; a question Telegram did not take closes
    its prompt again."""
    runtime = runtime_of(context)
    if not await asyncio.to_thread(caption_exists_behind, runtime, press.caption_id, where):
        await query.answer(replies.STALE_BUTTON)
        return
    user_id = query.from_user.id
    try:
        token = await asyncio.to_thread(open_prompt, runtime, where.chat_id, user_id, press.caption_id)
    except REDIS_OUTAGES as error:
        log.warning("could not open a ✏️ prompt for user %s: %s; they are told", user_id, first_line(error))
        await query.answer(replies.PROMPT_NOT_OPENED)
        return
    await query.answer()
    question = replies.CORRECTION_PROMPT
    if in_group(query.message.chat):  # the group sees the question: say whose it is
        question = replies.GROUP_CORRECTION_PROMPT.format(name=query.from_user.first_name)
    try:
        prompt = await context.bot.send_message(
            where.chat_id,
            question,
            reply_markup=correction_prompt_markup(press.caption_id, token),
            reply_parameters=ReplyParameters(where.message_id, allow_sending_without_reply=True),
        )
    except TelegramError:  # no question was asked, so no text may be taken for an answer
        await asyncio.to_thread(_close_quietly, runtime, where.chat_id, user_id, token)
        raise
    try:  # without it a reply to this question still answers the user's latest prompt: this one
        await asyncio.to_thread(attach_prompt_message, runtime, where.chat_id, token, prompt.message_id)
    except REDIS_OUTAGES as error:
        log.warning("could not link the ✏️ prompt to its message: %s; the latest prompt still works", first_line(error))


def _close_quietly(runtime: Runtime, chat_id: int, user_id: int, token: str) -> None:
    try:
        close_prompt(runtime, chat_id, user_id, token)
    except REDIS_OUTAGES as error:  # Redis is gone too: the prompt's keys expire by themselves
        log.warning("could not close an unasked ✏️ prompt: %s", first_line(error))
