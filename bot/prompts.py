"""The ✏️ prompt's state in Redis: a text is a correction only while the prompt that asked for it is open.

A prompt is opened before it is sent, so a Redis failure means no prompt (the user is told storage
is down) rather than a prompt whose answer would be taken for ordinary chat and lost. It is closed
by the answer, by Cancel, by /forget, or by expiry (CORRECTION_PROMPT_TTL_S). Keys:

- `captionbot:correction:{chat}:{user}:{token}` → caption id: the open prompt (a random token, also
  in the Cancel button's data, so a stale Cancel or another user's matches nothing);
- `captionbot:correction-pending:{chat}:{user}` → token: the user's latest prompt, which any text
  answers;
- `captionbot:correction-message:{chat}:{message}` → token: the prompt's message, so a reply to an
  older prompt answers that one. Written after sending; without it the latest prompt still works.
"""
from __future__ import annotations

import secrets

from service.runtime import Runtime

PROMPT_KEY = "captionbot:correction:{chat_id}:{user_id}:{token}"
PENDING_KEY = "captionbot:correction-pending:{chat_id}:{user_id}"
MESSAGE_KEY = "captionbot:correction-message:{chat_id}:{message_id}"


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def open_prompt(runtime: Runtime, chat_id: int, user_id: int, caption_id: int) -> str:
    """Open a prompt for the user's correction of `caption_id`; returns its token. Redis errors escape."""
    token = secrets.token_hex(4)
    ttl = runtime.settings.correction_prompt_ttl_s
    with runtime.redis.pipeline(transaction=True) as pipeline:
        pipeline.set(PROMPT_KEY.format(chat_id=chat_id, user_id=user_id, token=token), caption_id, ex=ttl)
        pipeline.set(PENDING_KEY.format(chat_id=chat_id, user_id=user_id), token, ex=ttl)
        pipeline.execute()
    return token


def attach_prompt_message(runtime: Runtime, chat_id: int, token: str, message_id: int) -> None:
    key = MESSAGE_KEY.format(chat_id=chat_id, message_id=message_id)
    runtime.redis.set(key, token, ex=runtime.settings.correction_prompt_ttl_s)


def prompt_answered(runtime: Runtime, chat_id: int, user_id: int, reply_to_message_id: int | None) -> tuple[str, int] | None:
    """(prompt token, caption id) this text answers, or None if it answers no open prompt of this user.

    A reply to a prompt answers that prompt; any other text answers the user's latest prompt.
    """
    candidates = []
    if reply_to_message_id is not None:
        candidates.append(_text(runtime.redis.get(MESSAGE_KEY.format(chat_id=chat_id, message_id=reply_to_message_id))))
    candidates.append(_text(runtime.redis.get(PENDING_KEY.format(chat_id=chat_id, user_id=user_id))))
    for token in candidates:
        if token is None:
            continue
        caption_id = runtime.redis.get(PROMPT_KEY.format(chat_id=chat_id, user_id=user_id, token=token))
        if caption_id is not None:
            return token, int(caption_id)
    return None


def close_prompt(runtime: Runtime, chat_id: int, user_id: int, token: str) -> None:
    """Close one prompt; the user's latest prompt stays open if it is another one."""
    pending = PENDING_KEY.format(chat_id=chat_id, user_id=user_id)
    runtime.redis.delete(PROMPT_KEY.format(chat_id=chat_id, user_id=user_id, token=token))
    if _text(runtime.redis.get(pending)) == token:  # one user's updates are handled in order
        runtime.redis.delete(pending)


def cancel_prompt(runtime: Runtime, chat_id: int, user_id: int, caption_id: int, token: str) -> bool:
    """Close the prompt named by a Cancel press; False (nothing changed) if no such prompt is open."""
    open_for = runtime.redis.get(PROMPT_KEY.format(chat_id=chat_id, user_id=user_id, token=token))
    if open_for is None or int(open_for) != caption_id:
        return False
    close_prompt(runtime, chat_id, user_id, token)
    return True


def forget_prompts(runtime: Runtime, user_id: int) -> None:
    """Close every prompt of the user, in their private chat and in every group (/forget)."""
    patterns = (PROMPT_KEY.format(chat_id="*", user_id=user_id, token="*"), PENDING_KEY.format(chat_id="*", user_id=user_id))
    keys = [key for pattern in patterns for key in runtime.redis.scan_iter(match=pattern, count=1000)]
    if keys:
        runtime.redis.delete(*keys)
