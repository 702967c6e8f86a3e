"""Admin commands on one user's feedback: /feedback USER_ID lists it, /exclude USER_ID keeps it out of
training, /include USER_ID counts it again. Nothing is deleted: exclusion only tells the trainer.

Try it as an admin (ADMIN_IDS): /feedback 1001, /exclude 1001, /include 1001.
"""
from __future__ import annotations

import asyncio

from telegram import Update
from telegram.constants import MessageLimit
from telegram.ext import ContextTypes

from bot.admin import admins_only
from bot.state import runtime_of
from service.runtime import Runtime
from store.db import session_scope
from store.feedback import FeedbackItem, UserFeedback, set_training_excluded, user_feedback

LISTED = 50  # items read for /feedback; the message is cut to fit Telegram anyway
QUOTED_CHARS = 120
MARKS = {"up": "👍", "down": "👎", "correction": "✏️"}
USAGE = "Usage: /{command} USER_ID (a Telegram user id)."
NO_SUCH_USER = "I have nothing from user {user_id}."
EXCLUDED = "User {user_id}'s feedback is now left out of training from the next /retrain on; it stays stored. /include {user_id} undoes it."
INCLUDED = "User {user_id}'s feedback counts for training again from the next /retrain on."


def _user_id_argument(context: ContextTypes.DEFAULT_TYPE) -> int | None:
    args = context.args or []
    if len(args) != 1 or not args[0].lstrip("-").isdigit():
        return None
    return int(args[0])


async def _answer_for_user(update: Update, context: ContextTypes.DEFAULT_TYPE, command: str, work) -> None:
    """Parse USER_ID, run `work(runtime, user_id)` in a thread, send what it returns."""
    user_id = _user_id_argument(context)
    if user_id is None:
        await update.effective_message.reply_text(USAGE.format(command=command))
        return
    text = await asyncio.to_thread(work, runtime_of(context), user_id)
    await update.effective_message.reply_text(text)


@admins_only
async def feedback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await _answer_for_user(update, context, "feedback", describe_feedback)


@admins_only
async def exclude(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await _answer_for_user(update, context, "exclude", lambda runtime, user_id: set_exclusion(runtime, user_id, True))


@admins_only
async def include(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await _answer_for_user(update, context, "include", lambda runtime, user_id: set_exclusion(runtime, user_id, False))


def set_exclusion(runtime: Runtime, user_id: int, excluded: bool) -> str:
    with session_scope(runtime.session_factory) as session:
        found = set_training_excluded(session, user_id, excluded)
    if not found:
        return NO_SUCH_USER.format(user_id=user_id)
    return (EXCLUDED if excluded else INCLUDED).format(user_id=user_id)


def describe_feedback(runtime: Runtime, user_id: int) -> str:
    with session_scope(runtime.session_factory) as session:
        history = user_feedback(session, user_id, LISTED)
    if history is None:
        return NO_SUCH_USER.format(user_id=user_id)
    return format_feedback(history)


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return f"“{text[:QUOTED_CHARS]}…”" if len(text) > QUOTED_CHARS else f"“{text}”"


def _line(item: FeedbackItem) -> str:
    said = f"{item.at:%Y-%m-%d %H:%M} {MARKS[item.kind]} caption {item.caption_id} {_quote(item.caption)}"
    return said + (f" → {_quote(item.correction)}" if item.correction is not None else "")


def format_feedback(history: UserFeedback, limit: int = MessageLimit.MAX_TEXT_LENGTH) -> str:
    """Counts, then the newest items first, as many as fit in one Telegram message."""
    status = (
        f"excluded from training since {history.excluded_at:%Y-%m-%d %H:%M} UTC"
        if history.excluded_at else "counts for training"
    )
    head = (
        f"Feedback of user {history.user_id} ({status}): {history.ups} 👍, {history.downs} 👎, "
        f"{history.corrections} corrections. Newest first:"
    )
    total = history.ups + history.downs + history.corrections
    lines = [head]
    for shown, item in enumerate(history.newest):
        more = f"… and {total - shown} more."
        line = _line(item)
        if len("\n".join([*lines, line, more])) > limit:
            lines.append(more)
            break
        lines.append(line)
    else:
        if total > len(history.newest):
            lines.append(f"… and {total - len(history.newest)} more.")
    if total == 0:
        lines[0] = f"Feedback of user {history.user_id} ({status}): none yet."
    return "\n".join(lines)
