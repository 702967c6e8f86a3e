"""/forget's question in Redis: "Delete everything" deletes only while the question that offered it is open.

A question is opened before it is sent (a Redis failure means no question, and the user is told
storage is down) and expires after FORGET_CONFIRMATION_TTL_S. Its key,
`captionbot:forget:{chat}:{user}:{token}`, holds nothing but its expiry: the random token is also
in the buttons' data, so another user's press, a forged token or a question already answered
matches no key.
"""
from __future__ import annotations

import secrets

from service.runtime import Runtime

QUESTION_KEY = "captionbot:forget:{chat_id}:{user_id}:{token}"


def open_question(runtime: Runtime, chat_id: int, user_id: int) -> str:
    """Open a question for this user in this chat; returns its token. Redis errors escape."""
    token = secrets.token_hex(4)
    key = QUESTION_KEY.format(chat_id=chat_id, user_id=user_id, token=token)
    runtime.redis.set(key, 1, ex=runtime.settings.forget_confirmation_ttl_s)
    return token


def question_open(runtime: Runtime, chat_id: int, user_id: int, token: str) -> bool:
    return bool(runtime.redis.exists(QUESTION_KEY.format(chat_id=chat_id, user_id=user_id, token=token)))


def close_question(runtime: Runtime, chat_id: int, user_id: int, token: str) -> bool:
    """Close the question; False if it was not open (answered, expired or never asked)."""
    return bool(runtime.redis.delete(QUESTION_KEY.format(chat_id=chat_id, user_id=user_id, token=token)))
