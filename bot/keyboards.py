"""The feedback buttons as python-telegram-bot objects (the protocol is service.feedback_buttons)."""
from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from service.feedback_buttons import cancel_keyboard, feedback_keyboard, forget_keyboard


def _markup(keyboard: dict) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b["text"], callback_data=b["callback_data"]) for b in row] for row in keyboard["inline_keyboard"]]
    )


def feedback_markup(caption_id: int, chosen: str | None = None) -> InlineKeyboardMarkup:
    """👍 👎 ✏️ for one caption, with the user's current rating marked."""
    return _markup(feedback_keyboard(caption_id, chosen))


def correction_prompt_markup(caption_id: int, prompt_token: str) -> InlineKeyboardMarkup:
    """Cancel, under a ✏️ prompt (a message has one markup: this, rather than Telegram's ForceReply)."""
    return _markup(cancel_keyboard(caption_id, prompt_token))


def forget_markup(token: str) -> InlineKeyboardMarkup:
    """"Delete everything" and "Keep", under /forget's question."""
    return _markup(forget_keyboard(token))
