"""/start and /help: what the bot does and how to use it (in a group, how to ask it); /forget is
bot/forget.py."""
from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from bot import replies
from bot.groups import in_group
from bot.state import runtime_of


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    text = replies.GROUP_START if in_group(update.effective_chat) else replies.START
    await update.effective_message.reply_text(text)


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    settings = runtime_of(context).settings
    text = replies.GROUP_HELP if in_group(update.effective_chat) else replies.HELP
    await update.effective_message.reply_text(
        text.format(max_mb=replies.megabytes(settings.max_download_bytes), per_minute=settings.rate_limit_per_minute)
    )
