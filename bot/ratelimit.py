"""Per-user limits a minute (photos, corrections), kept in Redis so that every bot process shares them."""
from __future__ import annotations

import time

from redis import Redis

KEY_PREFIX = "captionbot:rate"
CORRECTION_KEY_PREFIX = "captionbot:rate-correction"


def _within_limit(redis: Redis, prefix: str, user_id: int, limit_per_minute: int, now: float | None) -> bool:
    """Count one more against the user's current minute; False once the minute's limit is used.

    A fixed window per calendar minute: one INCR and one EXPIRE, atomic in a MULTI block.
    """
    minute = int((time.time() if now is None else now) // 60)
    key = f"{prefix}:{user_id}:{minute}"
    with redis.pipeline(transaction=True) as pipeline:
        pipeline.incr(key)
        pipeline.expire(key, 120)
        count, _ = pipeline.execute()
    return int(count) <= limit_per_minute


def allow_photo(redis: Redis, user_id: int, limit_per_minute: int, now: float | None = None) -> bool:
    return _within_limit(redis, KEY_PREFIX, user_id, limit_per_minute, now)


def allow_correction(redis: Redis, user_id: int, limit_per_minute: int, now: float | None = None) -> bool:
    """Corrections have a limit of their own: the photo limit alone would let one user type hundreds."""
    return _within_limit(redis, CORRECTION_KEY_PREFIX, user_id, limit_per_minute, now)
