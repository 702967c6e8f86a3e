"""Photos and image documents: record, queue, and show "typing" while a worker writes the caption.

Try it: send the bot a photo, or a PNG as a file. A PDF or a 25 MB file gets a clear refusal.
"""
from __future__ import annotations

import asyncio
import logging

from telegram import Message, PhotoSize, Update
from telegram.constants import ChatAction
from telegram.ext import ContextTypes

from bot import replies
from bot.enqueue import Outcome, PhotoSubmission, submit_photo
from bot.state import runtime_of

log = logging.getLogger(__name__)


def choose_photo_size(sizes: tuple[PhotoSize, ...], max_bytes: int) -> PhotoSize:
    """The largest size Telegram offers that can still be downloaded (else the largest, to refuse)."""
    by_area = sorted(sizes, key=lambda size: size.width * size.height)
    fitting = [size for size in by_area if size.file_size is None or size.file_size <= max_bytes]
    return fitting[-1] if fitting else by_area[-1]


async def on_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    size = choose_photo_size(message.photo, runtime_of(context).settings.max_download_bytes)
    submission = _submission(update, message, size.file_id, size.file_unique_id, size.file_size, None)
    await _submit(message, context, submission)


async def on_document(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    document = message.document
    submission = _submission(
        update,
        message,
        document.file_id,
        document.file_unique_id,
        document.file_size,
        document.mime_type or "application/octet-stream",
    )
    await _submit(message, context, submission)


def _submission(
    update: Update,
    message: Message,
    file_id: str,
    file_unique_id: str,
    file_size: int | None,
    mime_type: str | None,
) -> PhotoSubmission:
    return PhotoSubmission(
        user_id=update.effective_user.id,
        chat_id=message.chat_id,
        message_id=message.message_id,
        file_id=file_id,
        file_unique_id=file_unique_id,
        file_size=file_size,
        mime_type=mime_type,
    )


async def _submit(message: Message, context: ContextTypes.DEFAULT_TYPE, submission: PhotoSubmission) -> None:
    """Hand the photo to `submit_photo` in a thread; storage errors reach the error handler."""
    runtime = runtime_of(context)
    result = await asyncio.to_thread(submit_photo, runtime, submission)
    max_mb = replies.megabytes(runtime.settings.max_download_bytes)
    if result.outcome is Outcome.queued:
        await context.bot.send_chat_action(message.chat_id, ChatAction.TYPING)
    elif result.outcome is Outcome.rate_limited:
        await message.reply_text(replies.RATE_LIMITED)
    elif result.outcome is Outcome.too_big:
        await message.reply_text(replies.TOO_BIG.format(max_mb=max_mb))
    else:
        await message.reply_text(replies.UNSUPPORTED)
