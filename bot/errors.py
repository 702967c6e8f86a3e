"""The error handler: tell the user something short and true, keep running.

Redis or the database being out is expected now and then: one WARNING line. Anything else is a
bug and its traceback goes to the log.
"""
from __future__ import annotations

import logging

from telegram import Update
from telegram.error import NetworkError, TelegramError
from telegram.ext import ContextTypes

from bot import replies
from service.runtime import STORAGE_OUTAGES
from store.outages import first_line

log = logging.getLogger(__name__)


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    error = context.error
    if isinstance(error, STORAGE_OUTAGES):  # the user can simply try again in a moment
        log.warning("storage unavailable while handling an update: %s; the user is told to retry", first_line(error))
        text = replies.STORAGE_DOWN
    elif isinstance(error, NetworkError) and not isinstance(update, Update):
        log.warning("Bot API unreachable: %s", error)  # polling retries by itself
        return
    else:
        log.error("error while handling an update", exc_info=error)
        text = replies.UNEXPECTED
    if not isinstance(update, Update):
        return
    try:
        if update.callback_query is not None:
            await update.callback_query.answer(text)
        elif update.effective_message is not None:
            await update.effective_message.reply_text(text)
    except TelegramError as reply_error:  # answered already, or Telegram unreachable too
        log.warning("could not tell the user about the error: %s", reply_error)
