"""A per-user limit on photos a minute, kept in Redis so that every bot process shares it."""
from __future__ import annotations

import time

from redis import Redis

KEY_PREFIX = "captionbot:rate"


def allow_photo(redis: Redis, user_id: int, limit_per_minute: int, now: float | None = None) -> bool:
    """Count this photo against the user's current minute; False once the minute's limit is used.

    A fixed window per calendar minute: one INCR and one EXPIRE, atomic in a MULTI block.
    """
    minute = int((time.time() if now is None else now) // 60)
    key = f"{KEY_PREFIX}:{user_id}:{minute}"
    with redis.pipeline(transaction=True) as pipeline:
        pipeline.incr(key)
        pipeline.expire(key, 120)
        count, _ = pipeline.execute()
    return int(count) <= limit_per_minute
