"""Photos and image documents: record, queue, and show "typing" while a worker writes the caption.

Try it: send the bot a photo, or a PNG as a file. A PDF or a 25 MB file gets a clear refusal.
In a group, mention the bot in the photo's caption, or reply /caption to a photo (bot/group_commands.py).
"""
from __future__ import annotations

import asyncio
import logging

from telegram import Message, PhotoSize, Update
from telegram.constants import ChatAction
from telegram.ext import ContextTypes

from bot import metrics, replies
from bot.enqueue import Outcome, PhotoSubmission, submit_photo
from bot.groups import photo_wanted
from bot.state import runtime_of

log = logging.getLogger(__name__)


def choose_photo_size(sizes: tuple[PhotoSize, ...], max_bytes: int) -> PhotoSize:
    """The largest size Telegram offers that can still be downloaded (else the largest, to refuse)."""
    by_area = sorted(sizes, key=lambda size: size.width * size.height)
    fitting = [size for size in by_area if size.file_size is None or size.file_size <= max_bytes]
    return fitting[-1] if fitting else by_area[-1]


async def on_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A photo or image document: captioned in a private chat; in a group when asked (bot/groups.py)."""
    message = update.effective_message
    if not await photo_wanted(message, context):
        return
    await submit_message(message, update.effective_user.id, context)


async def submit_message(
    message: Message, user_id: int, context: ContextTypes.DEFAULT_TYPE, asked_by: int | None = None
) -> None:
    """Caption the photo or document in `message`, sent by `user_id` (asked for by `asked_by`)."""
    submission = photo_submission(message, user_id, runtime_of(context).settings.max_download_bytes, asked_by)
    await _submit(message, context, submission)


def photo_submission(message: Message, user_id: int, max_bytes: int, asked_by: int | None = None) -> PhotoSubmission:
    """What to record for the message's photo (the largest fitting size) or document."""
    if message.photo:
        size = choose_photo_size(message.photo, max_bytes)
        file_id, unique_id, file_size, mime_type = size.file_id, size.file_unique_id, size.file_size, None
    else:
        document = message.document
        file_id, unique_id, file_size = document.file_id, document.file_unique_id, document.file_size
        mime_type = document.mime_type or "application/octet-stream"
    return PhotoSubmission(
        user_id=user_id,
        chat_id=message.chat_id,
        message_id=message.message_id,
        file_id=file_id,
        file_unique_id=unique_id,
        file_size=file_size,
        mime_type=mime_type,
        asked_by=asked_by,
    )


async def _submit(message: Message, context: ContextTypes.DEFAULT_TYPE, submission: PhotoSubmission) -> None:
    """Hand the photo to `submit_photo` in a thread; storage errors reach the error handler."""
    runtime = runtime_of(context)
    result = await asyncio.to_thread(submit_photo, runtime, submission)
    max_mb = replies.megabytes(runtime.settings.max_download_bytes)
    if result.outcome is not Outcome.queued:
        metrics.refused(result.outcome.value)
    if result.outcome is Outcome.queued:
        await context.bot.send_chat_action(message.chat_id, ChatAction.TYPING)
    elif result.outcome is Outcome.rate_limited:
        await message.reply_text(replies.RATE_LIMITED)
    elif result.outcome is Outcome.too_big:
        await message.reply_text(replies.TOO_BIG.format(max_mb=max_mb))
    else:
        await message.reply_text(replies.UNSUPPORTED)
