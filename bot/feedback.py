"""Ratings and corrections, without Telegram types: checks against the database.

A button press counts only if its caption exists and the press came from the very message that
carries that caption's buttons (in that caption's chat), so a forged or stale callback changes nothing.
A correction is the answer to an open ✏️ prompt (bot/prompts.py), stored within the user's
CORRECTION_RATE_LIMIT_PER_MINUTE.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from bot.prompts import close_prompt
from bot.ratelimit import allow_correction
from service.runtime import Runtime
from store.db import session_scope
from store.models import Caption
from store.queries import add_correction, get_caption, set_rating

MAX_CORRECTION_CHARS = 300


@dataclass(frozen=True)
class ButtonMessage:
    """Where a button was pressed: the chat and the message that carries the buttons."""

    chat_id: int
    message_id: int


def caption_behind(session: Session, caption_id: int, where: ButtonMessage) -> Caption | None:
    """The caption, if the press came from its own message in its own chat.

    The worker saves the message id just after sending; a press in between is accepted when the
    chat matches (nobody can reach another chat's captions that way).
    """
    caption = get_caption(session, caption_id)
    if caption is None or caption.request.chat_id != where.chat_id:
        return None
    if caption.reply_message_id not in (None, where.message_id):
        return None
    return caption


def rate_caption(runtime: Runtime, caption_id: int, user_id: int, where: ButtonMessage, value: str) -> str | None:
    """Store or change the user's rating; the model version of the rated caption, or None
    (nothing changed) if the button is not genuine."""
    with session_scope(runtime.session_factory) as session:
        caption = caption_behind(session, caption_id, where)
        if caption is None:
            return None
        model_version = caption.model_version
        set_rating(session, caption_id, user_id, value)  # type: ignore[arg-type]
    return model_version


def caption_exists_behind(runtime: Runtime, caption_id: int, where: ButtonMessage) -> bool:
    with session_scope(runtime.session_factory) as session:
        return caption_behind(session, caption_id, where) is not None


def save_correction(runtime: Runtime, chat_id: int, user_id: int, prompt_token: str, caption_id: int, text: str) -> bool:
    """Store the correction and close its prompt; False if the caption was deleted meanwhile."""
    with session_scope(runtime.session_factory) as session:
        if get_caption(session, caption_id) is None:
            stored = False
        else:
            add_correction(session, caption_id, user_id, text)
            stored = True
    close_prompt(runtime, chat_id, user_id, prompt_token)
    return stored


def correction_allowed(runtime: Runtime, user_id: int) -> bool:
    """Count a correction against the user's minute; False (store nothing) once the limit is used."""
    return allow_correction(runtime.redis, user_id, runtime.settings.correction_rate_limit_per_minute)
