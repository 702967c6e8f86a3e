"""/start, /help and /forget: what the bot does, how to use it, and deleting what it keeps."""
from __future__ import annotations

import asyncio
from pathlib import Path

from telegram import Update
from telegram.ext import ContextTypes

from bot import replies
from bot.forgotten_jobs import delete_ended_caption_jobs
from bot.prompts import forget_prompts
from bot.state import runtime_of
from service.media_files import delete_media_file
from service.runtime import Runtime
from store.db import session_scope
from store.queries import caption_ids_of, forget_user, request_ids_of


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await update.effective_message.reply_text(replies.START)


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    settings = runtime_of(context).settings
    await update.effective_message.reply_text(
        replies.HELP.format(
            max_mb=replies.megabytes(settings.max_download_bytes), per_minute=settings.rate_limit_per_minute
        )
    )


async def forget(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    runtime = runtime_of(context)
    user_id = update.effective_user.id
    deleted_files = await asyncio.to_thread(forget_everything, runtime, user_id, update.effective_chat.id)
    await update.effective_message.reply_text(replies.FORGOTTEN.format(photos=deleted_files))


def forget_everything(runtime: Runtime, user_id: int, chat_id: int) -> int:
    """Delete the user's rows, then the photo files nobody else sent, the ended caption and
    attention-map jobs and the maps' file ids; returns how many files went."""
    with session_scope(runtime.session_factory) as session:
        request_ids = request_ids_of(session, user_id)
        caption_ids = caption_ids_of(session, user_id)
        paths = forget_user(session, user_id)
    forget_prompts(runtime, chat_id, user_id)
    delete_ended_caption_jobs(runtime, request_ids, caption_ids)
    return sum(delete_media_file(Path(path), runtime.settings.resolved_media_dir) for path in paths)

