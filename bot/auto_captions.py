"""/auto's per-group flag in Redis, beside the chat's other state (the ✏️ prompts).

`captionbot:auto-captions:{chat}` exists while a group's admins want every photo captioned. It is
the group's setting, not a member's data, so /forget leaves it; it has no expiry.
"""
from __future__ import annotations

import logging

from service.runtime import REDIS_OUTAGES, Runtime
from store.outages import first_line

log = logging.getLogger(__name__)
AUTO_KEY = "captionbot:auto-captions:{chat_id}"


def set_auto_captions(runtime: Runtime, chat_id: int, on: bool) -> None:
    """Turn the group's automatic captions on or off. Redis errors escape (the admin is told)."""
    key = AUTO_KEY.format(chat_id=chat_id)
    if on:
        runtime.redis.set(key, 1)
    else:
        runtime.redis.delete(key)


def auto_captions_on(runtime: Runtime, chat_id: int) -> bool:
    """Whether every photo in the group is captioned; while Redis is out, no: a photo nobody asked
    about is left alone rather than answered with an apology."""
    try:
        return bool(runtime.redis.exists(AUTO_KEY.format(chat_id=chat_id)))
    except REDIS_OUTAGES as error:
        log.warning("could not read chat %s's /auto flag (%s); its photo is left alone", chat_id, first_line(error))
        return False
