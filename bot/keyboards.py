"""The feedback buttons as python-telegram-bot objects (the protocol is captionbot.feedback_buttons)."""
from __future__ import annotations

from telegram import ForceReply, InlineKeyboardButton, InlineKeyboardMarkup

from bot import replies
from captionbot.feedback_buttons import feedback_keyboard


def feedback_markup(caption_id: int, chosen: str | None = None) -> InlineKeyboardMarkup:
    """👍 👎 ✏️ for one caption, with the user's current rating marked."""
    rows = feedback_keyboard(caption_id, chosen)["inline_keyboard"]
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b["text"], callback_data=b["callback_data"]) for b in row] for row in rows]
    )


def correction_prompt_markup() -> ForceReply:
    return ForceReply(selective=True, input_field_placeholder=replies.CORRECTION_PLACEHOLDER)
