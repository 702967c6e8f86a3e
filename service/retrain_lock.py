"""One retraining at a time: a Redis lock shared by the bot, the trainer and `captionbot retrain`.

/retrain takes the lock when it queues the run (state "queued", held as long as the job may wait),
the trainer claims it when the run starts (state "running") and keeps it alive with a short TTL
from a thread, and releases it at the end. A trainer that dies stops refreshing it, so the lock
frees itself within one TTL and the next /retrain is accepted. The value says who asked, since
when and the latest progress, for the admin who is told "already running".
"""
from __future__ import annotations

import json
import logging
import threading
import uuid
from datetime import datetime, timezone
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
LOCK_KEY = "captionbot:retrain:lock"

# Set the value only if the stored one carries our token (or, when allowed, if there is none).
_COMPARE_AND_SET = """
local current = redis.call('GET', KEYS[1])
if not current then
  if ARGV[3] ~= '1' then return 0 end
elseif cjson.decode(current)['token'] ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[4]))
return 1
"""
_COMPARE_AND_DELETE = """
local current = redis.call('GET', KEYS[1])
if current and cjson.decode(current)['token'] == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class RetrainLock:
    def __init__(self, redis: Redis, key: str = LOCK_KEY) -> None:
        self.redis = redis
        self.key = key
        self._set = redis.register_script(_COMPARE_AND_SET)
        self._delete = redis.register_script(_COMPARE_AND_DELETE)

    def acquire(self, ttl_s: int, **fields: Any) -> str | None:
        """A new token if nobody holds the lock, else None. `fields` (who, what) go into its value."""
        token = uuid.uuid4().hex
        value = {"token": token, "state": "queued", "since": _now(), **fields}
        return token if self.redis.set(self.key, json.dumps(value), nx=True, ex=ttl_s) else None

    def holder(self) -> dict[str, Any] | None:
        raw = self.redis.get(self.key)
        return None if raw is None else json.loads(raw)

    def update(self, token: str, ttl_s: int, create: bool = False, **fields: Any) -> bool:
        """Refresh the TTL and merge `fields` into the value, if the lock is still ours.

        With `create`, an expired lock is taken again (a queued run whose wait outlived the TTL).
        """
        current = self.holder() or {"token": token, "since": _now()}
        value = {**current, **fields, "token": token}
        return bool(self._set(keys=[self.key], args=[token, json.dumps(value), "1" if create else "0", ttl_s]))

    def release(self, token: str) -> bool:
        return bool(self._delete(keys=[self.key], args=[token]))


class LockKeeper:
    """Holds a claimed lock for a running job: refreshes it every ttl/3 from a daemon thread."""

    def __init__(self, lock: RetrainLock, token: str, ttl_s: int) -> None:
        self.lock = lock
        self.token = token
        self.ttl_s = ttl_s
        self._fields: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._refresh_until_stopped, name="retrain-lock", daemon=True)

    def claim(self, **fields: Any) -> bool:
        """Take the lock for the run (ours from /retrain, or free); False if another run holds it."""
        self._fields = {"state": "running", "started": _now(), **fields}
        if not self.lock.update(self.token, self.ttl_s, create=True, **self._fields):
            return False
        self._thread.start()
        return True

    def note(self, **fields: Any) -> None:
        """Record progress for the "already running" answer (and refresh the TTL while at it)."""
        self._fields.update(fields)
        try:
            self.lock.update(self.token, self.ttl_s, **self._fields)
        except RedisError as error:
            log.warning("could not record retraining progress: %s", error)

    def _refresh_until_stopped(self) -> None:
        while not self._stop.wait(max(1.0, self.ttl_s / 3)):
            try:
                if not self.lock.update(self.token, self.ttl_s, **self._fields):
                    log.warning("the retraining lock is no longer ours")
            except RedisError as error:
                log.warning("could not refresh the retraining lock: %s", error)

    def release(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        try:
            self.lock.release(self.token)
        except RedisError as error:  # it expires by itself within one TTL
            log.warning("could not release the retraining lock: %s", error)
