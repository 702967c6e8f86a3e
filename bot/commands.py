"""/start, /help and /forget: what the bot does, how to use it (in a group, how to ask it), and
deleting what it keeps."""
from __future__ import annotations

import asyncio
from pathlib import Path

from telegram import Update
from telegram.ext import ContextTypes

from bot import replies
from bot.forgotten_jobs import delete_ended_caption_jobs
from bot.groups import in_group
from bot.prompts import forget_prompts
from bot.state import runtime_of
from service.media_files import delete_media_file
from service.runtime import Runtime
from store.db import session_scope
from store.queries import forget_user, request_ids_of


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    text = replies.GROUP_START if in_group(update.effective_chat) else replies.START
    await update.effective_message.reply_text(text)


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    settings = runtime_of(context).settings
    text = replies.GROUP_HELP if in_group(update.effective_chat) else replies.HELP
    await update.effective_message.reply_text(
        text.format(max_mb=replies.megabytes(settings.max_download_bytes), per_minute=settings.rate_limit_per_minute)
    )


async def forget(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    runtime = runtime_of(context)
    user_id = update.effective_user.id
    deleted_files = await asyncio.to_thread(forget_everything, runtime, user_id)
    await update.effective_message.reply_text(replies.FORGOTTEN.format(photos=deleted_files))


def forget_everything(runtime: Runtime, user_id: int) -> int:
    """Delete the user's rows, then the photo files nobody else sent and the ended caption jobs;
    returns how many files went."""
    with session_scope(runtime.session_factory) as session:
        request_ids = request_ids_of(session, user_id)
        paths = forget_user(session, user_id)
    forget_prompts(runtime, user_id)
    delete_ended_caption_jobs(runtime, request_ids)
    return sum(delete_media_file(Path(path), runtime.settings.resolved_media_dir) for path in paths)

