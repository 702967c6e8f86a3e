"""`captionbot up` says "ready" when a photo sent now would be captioned: a caption worker has
loaded its model and listens on the captions queue (before that the chat page works, but a photo
waits for the model)."""
from __future__ import annotations

import time

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Worker

from service.runtime import CAPTIONS_QUEUE


def caption_worker_listening(connection: Redis) -> bool:
    """A worker registered on the captions queue: it registers once its model is loaded."""
    try:
        return Worker.count(connection=connection, queue=Queue(CAPTIONS_QUEUE, connection=connection)) > 0
    except RedisError:
        return False


class ReadyAnnouncement:
    """Called on every supervisor step; prints `message` once, when a caption worker listens."""

    def __init__(self, connection: Redis, message: str, check_interval_s: float = 0.5) -> None:
        self.connection = connection
        self.message = message
        self.check_interval_s = check_interval_s
        self.announced = False
        self._next_check = 0.0

    def __call__(self) -> None:
        now = time.monotonic()
        if self.announced or now < self._next_check:
            return
        self._next_check = now + self.check_interval_s
        if caption_worker_listening(self.connection):
            print(self.message, flush=True)
            self.announced = True
