"""Ratings and corrections, without Telegram types: checks against the database, prompts in Redis.

A button press counts only if its caption exists and the press came from the very message that
carries that caption's buttons (in that caption's chat), so a forged or stale callback changes nothing.
A ✏️ prompt is remembered in Redis (prompt message -> caption) for a day; the user's reply to
it, or their next text in that chat, becomes the correction.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from captionbot.runtime import Runtime
from store.db import session_scope
from store.models import Caption
from store.queries import add_correction, get_caption, set_rating

PROMPT_KEY = "captionbot:correction:{chat_id}:{prompt_message_id}"
PENDING_KEY = "captionbot:correction-pending:{chat_id}:{user_id}"
MAX_CORRECTION_CHARS = 300


@dataclass(frozen=True)
class ButtonMessage:
    """Where a button was pressed: the chat and the message that carries the buttons."""

    chat_id: int
    message_id: int


def _caption_behind(session: Session, caption_id: int, where: ButtonMessage) -> Caption | None:
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


def rate_caption(runtime: Runtime, caption_id: int, user_id: int, where: ButtonMessage, value: str) -> bool:
    """Store or change the user's rating; False (nothing changed) if the button is not genuine."""
    with session_scope(runtime.session_factory) as session:
        if _caption_behind(session, caption_id, where) is None:
            return False
        set_rating(session, caption_id, user_id, value)  # type: ignore[arg-type]
    return True


def caption_exists_behind(runtime: Runtime, caption_id: int, where: ButtonMessage) -> bool:
    with session_scope(runtime.session_factory) as session:
        return _caption_behind(session, caption_id, where) is not None


def remember_prompt(runtime: Runtime, chat_id: int, user_id: int, prompt_message_id: int, caption_id: int) -> None:
    ttl = runtime.settings.correction_prompt_ttl_s
    with runtime.redis.pipeline(transaction=True) as pipeline:
        pipeline.set(PROMPT_KEY.format(chat_id=chat_id, prompt_message_id=prompt_message_id), caption_id, ex=ttl)
        pipeline.set(PENDING_KEY.format(chat_id=chat_id, user_id=user_id), prompt_message_id, ex=ttl)
        pipeline.execute()


def prompt_answered(runtime: Runtime, chat_id: int, user_id: int, reply_to_message_id: int | None) -> tuple[int, int] | None:
    """(prompt message id, caption id) this text answers, or None if it answers no open prompt.

    A reply to a prompt answers that prompt; any other text answers the user's latest prompt.
    """
    candidates = [] if reply_to_message_id is None else [reply_to_message_id]
    pending = runtime.redis.get(PENDING_KEY.format(chat_id=chat_id, user_id=user_id))
    if pending is not None:
        candidates.append(int(pending))
    for prompt_id in candidates:
        caption_id = runtime.redis.get(PROMPT_KEY.format(chat_id=chat_id, prompt_message_id=prompt_id))
        if caption_id is not None:
            return prompt_id, int(caption_id)
    return None


def save_correction(runtime: Runtime, chat_id: int, user_id: int, prompt_message_id: int, caption_id: int, text: str) -> bool:
    """Store the correction and close the prompt; False if the caption was deleted meanwhile."""
    with session_scope(runtime.session_factory) as session:
        if get_caption(session, caption_id) is None:
            stored = False
        else:
            add_correction(session, caption_id, user_id, text)
            stored = True
    runtime.redis.delete(
        PROMPT_KEY.format(chat_id=chat_id, prompt_message_id=prompt_message_id),
        PENDING_KEY.format(chat_id=chat_id, user_id=user_id),
    )
    return stored


def forget_prompts(runtime: Runtime, chat_id: int, user_id: int) -> None:
    runtime.redis.delete(PENDING_KEY.format(chat_id=chat_id, user_id=user_id))
