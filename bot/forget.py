"""/forget asks first: "Delete everything" deletes what the bot keeps about the user, "Keep" keeps it.

Try it: send /forget, then press a button. The question expires after FORGET_CONFIRMATION_TTL_S;
a press after that, a second press, or a forged or stale press is answered politely and deletes
nothing (bot/forget_questions.py holds the open questions).
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from telegram import CallbackQuery, Update
from telegram.ext import ContextTypes

from bot import replies
from bot.flood_guard import accepted_press
from bot.forget_questions import close_question, open_question, question_open
from bot.forgotten_jobs import delete_ended_caption_jobs
from bot.keyboards import forget_markup
from bot.prompts import forget_prompts
from bot.state import runtime_of
from service.feedback_buttons import ForgetPress, parse_forget_callback_data
from service.media_files import delete_media_file
from service.runtime import Runtime
from store.db import session_scope
from store.models import User
from store.queries import caption_ids_of, forget_user, request_ids_of


@dataclass(frozen=True)
class Forgotten:
    """What /forget deleted: whether anything was stored, and how many photos the user had sent."""

    anything: bool
    photos: int


async def forget(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Ask; the question is stored first, so a Redis failure reaches the error handler, not the user as buttons."""
    runtime = runtime_of(context)
    token = await asyncio.to_thread(open_question, runtime, update.effective_chat.id, update.effective_user.id)
    await update.effective_message.reply_text(replies.FORGET_QUESTION, reply_markup=forget_markup(token))


async def on_answer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    runtime = runtime_of(context)
    press = await accepted_press(query, runtime, parse_forget_callback_data, replies.FORGET_EXPIRED)
    if press is None:
        return
    if press.choice == "keep":
        await _keep(query, runtime, press)
    else:
        await _delete(query, runtime, press)


async def _keep(query: CallbackQuery, runtime: Runtime, press: ForgetPress) -> None:
    if not await asyncio.to_thread(close_question, runtime, query.message.chat.id, query.from_user.id, press.token):
        await query.answer(replies.FORGET_EXPIRED)
        return
    await query.answer()
    await query.edit_message_text(replies.FORGET_KEPT)


async def _delete(query: CallbackQuery, runtime: Runtime, press: ForgetPress) -> None:
    """The question closes only once the deletion is done: if storage fails meanwhile, the user is
    told to try again, and the button still works. One user's presses are handled in order, so a
    second press finds it closed."""
    chat_id, user_id = query.message.chat.id, query.from_user.id
    if not await asyncio.to_thread(question_open, runtime, chat_id, user_id, press.token):
        await query.answer(replies.FORGET_EXPIRED)
        return
    forgotten = await asyncio.to_thread(forget_everything, runtime, user_id)
    await asyncio.to_thread(close_question, runtime, chat_id, user_id, press.token)
    await query.answer()
    await query.edit_message_text(replies.forgotten(forgotten.anything, forgotten.photos))


def forget_everything(runtime: Runtime, user_id: int) -> Forgotten:
    """Delete the user's rows, then the photo files nobody else sent, the ended caption and
    attention-map jobs and the maps' file ids."""
    with session_scope(runtime.session_factory) as session:
        anything = session.get(User, user_id) is not None
        request_ids = request_ids_of(session, user_id)
        caption_ids = caption_ids_of(session, user_id)
        paths = forget_user(session, user_id)
    forget_prompts(runtime, user_id)
    delete_ended_caption_jobs(runtime, request_ids, caption_ids)
    for path in paths:
        delete_media_file(Path(path), runtime.settings.resolved_media_dir)
    return Forgotten(anything=anything or bool(request_ids), photos=len(request_ids))
