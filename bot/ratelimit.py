"""Per-user limits a minute (photos, corrections, button presses, texts), kept in Redis so that every
bot process shares them."""
from __future__ import annotations

import time

from redis import Redis

KEY_PREFIX = "captionbot:rate"
CORRECTION_KEY_PREFIX = "captionbot:rate-correction"
BUTTON_KEY_PREFIX = "captionbot:rate-button"
TEXT_KEY_PREFIX = "captionbot:rate-text"


def _count(redis: Redis, prefix: str, user_id: int, now: float | None) -> int:
    """Count one more against the user's current minute; returns the minute's count so far.

    A fixed window per calendar minute: one INCR and one EXPIRE, atomic in a MULTI block.
    """
    minute = int((time.time() if now is None else now) // 60)
    key = f"{prefix}:{user_id}:{minute}"
    with redis.pipeline(transaction=True) as pipeline:
        pipeline.incr(key)
        pipeline.expire(key, 120)
        count, _ = pipeline.execute()
    return int(count)


def _within_limit(redis: Redis, prefix: str, user_id: int, limit_per_minute: int, now: float | None) -> bool:
    return _count(redis, prefix, user_id, now) <= limit_per_minute


def allow_photo(redis: Redis, user_id: int, limit_per_minute: int, now: float | None = None) -> bool:
    return _within_limit(redis, KEY_PREFIX, user_id, limit_per_minute, now)


def allow_correction(redis: Redis, user_id: int, limit_per_minute: int, now: float | None = None) -> bool:
    """Corrections have a limit of their own: the photo limit alone would let one user type hundreds."""
    return _within_limit(redis, CORRECTION_KEY_PREFIX, user_id, limit_per_minute, now)


def allow_button(redis: Redis, user_id: int, limit_per_minute: int, now: float | None = None) -> bool:
    """Every press counts, genuine or forged: each one costs the bot a database read and an answer."""
    return _within_limit(redis, BUTTON_KEY_PREFIX, user_id, limit_per_minute, now)


def text_over_limit(redis: Redis, user_id: int, limit_per_minute: int, now: float | None = None) -> int:
    """0 while the user's texts this minute are within the limit; else how many it is over (1: the
    first text too many, the one worth an answer)."""
    return max(0, _count(redis, TEXT_KEY_PREFIX, user_id, now) - limit_per_minute)
