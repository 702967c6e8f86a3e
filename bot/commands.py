"""/start and /help: what the bot does and how to use it (/forget is bot/forget.py)."""
from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from bot import replies
from bot.state import runtime_of


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await update.effective_message.reply_text(replies.START)


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    settings = runtime_of(context).settings
    await update.effective_message.reply_text(
        replies.HELP.format(
            max_mb=replies.megabytes(settings.max_download_bytes), per_minute=settings.rate_limit_per_minute
        )
    )
