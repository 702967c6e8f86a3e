"""What the bot and the caption workers share about 🔍 (where the model looked for each word):
the job, and two Redis keys per caption.

- `captionbot:attention-file:<caption_id>`: the Telegram file_id of the attention map once a
  worker has sent it, so a second press resends that picture (the bot does, at once) instead of
  drawing it again. It expires after FILE_TTL_S, and /forget deletes it with the caption.
- `captionbot:attention-pending:<caption_id>`: set by the bot when it queues the job, deleted by
  the worker when the job ends (expiring by itself if the worker dies), so presses while a map is
  being drawn queue nothing more.
"""
from __future__ import annotations

from collections.abc import Iterable

from redis import Redis

ATTENTION_JOB = "worker.attention.send_attention_map"
ATTENTION_FAILURE_CALLBACK = "worker.attention.report_attention_failure"
FILE_KEY_PREFIX = "captionbot:attention-file"
PENDING_KEY_PREFIX = "captionbot:attention-pending"
FILE_TTL_S = 30 * 24 * 3600
PHOTO_GONE_REPLY = "Sorry, I no longer have this photo, so I can't show where I looked."


def attention_job_id(caption_id: int) -> str:
    return f"attention-caption-{caption_id}"


def _file_key(caption_id: int) -> str:
    return f"{FILE_KEY_PREFIX}:{caption_id}"


def _pending_key(caption_id: int) -> str:
    return f"{PENDING_KEY_PREFIX}:{caption_id}"


def sent_file_id(redis: Redis, caption_id: int) -> str | None:
    """The file_id of the map already sent for this caption, if any."""
    value = redis.get(_file_key(caption_id))
    return None if value is None else value.decode() if isinstance(value, bytes) else str(value)


def remember_sent_file(redis: Redis, caption_id: int, file_id: str) -> None:
    redis.set(_file_key(caption_id), file_id, ex=FILE_TTL_S)


def claim_drawing(redis: Redis, caption_id: int, ttl_s: int) -> bool:
    """True for the one press that should queue the job; False while a map is being drawn."""
    return bool(redis.set(_pending_key(caption_id), 1, nx=True, ex=ttl_s))


def end_drawing(redis: Redis, caption_id: int) -> None:
    redis.delete(_pending_key(caption_id))


def forget_attention_maps(redis: Redis, caption_ids: Iterable[int]) -> None:
    """Drop what Redis holds about these captions' maps (their file ids point at pictures of the photo)."""
    keys = [key for caption_id in caption_ids for key in (_file_key(caption_id), _pending_key(caption_id))]
    if keys:
        redis.delete(*keys)


def drawing_claim_ttl_s(job_timeout_s: int) -> int:
    """Long enough for a job that waits behind a few captions, short enough that a press works
    again soon after a worker died with the job in hand."""
    return max(300, 2 * job_timeout_s)


def attention_map_caption(caption_text: str) -> str:
    """The text under the picture (Telegram allows 1,024 characters; a caption is far shorter)."""
    return f"Where I looked for each word of “{caption_text}”"[:1024]
