"""A store seeded with captions of three model versions and hand-countable feedback on them.

| version    | served | 👍 | 👎 | corrected captions                                          | served on   |
| ---------- | ------ | -- | -- | ----------------------------------------------------------- | ----------- |
| v1-old     | 10 (+1 never delivered, which does not count) | 8 | 2 | 2, each identical to its caption | 6 on DAY_1, 4 on DAY_2 |
| v2-new     | 4      | 1  | 3 (two users on one caption) | 1, sharing no word with its two corrections | DAY_2 |
| v0-unrated | 2      | 0  | 0  | 0                                                           | DAY_1       |
"""
from __future__ import annotations

import itertools
from datetime import datetime, timezone

from sqlalchemy.orm import Session

from store import queries

DAY_1 = datetime(2026, 11, 2, 9, 30, tzinfo=timezone.utc)  # a Monday
DAY_2 = datetime(2026, 11, 4, 15, 0, tzinfo=timezone.utc)  # the Wednesday of the same week
# Different captions: CIDEr-D gives n-grams found in every caption's references no weight.
V1_TEXTS = ("a dog runs on the grass", "a girl climbs a red wall")
V2_TEXT = "two cats sleep on a sofa"
V2_CORRECTIONS = ("red car parked outside", "blue truck near the road")
_users = itertools.count(50_000)


def serve_caption(session: Session, version: str, text: str, served_at: datetime, delivered: bool = True) -> int:
    """A new user's photo captioned by `version` at `served_at`; returns the caption id."""
    user = next(_users)
    request = queries.create_request(session, user_id=user, chat_id=user, message_id=1, file_id=f"f{user}",
                                     file_unique_id=f"u{user}", file_size=100)
    caption = queries.record_caption(session, request.id, text=text, model_version=version, beam=3, latency_ms=50.0)
    caption.created_at = served_at
    if delivered:
        queries.mark_delivered(session, request.id, reply_message_id=2)
    session.flush()
    return caption.id


def _owner(session: Session, caption_id: int) -> int:
    return queries.get_caption(session, caption_id).request.user_id


def seed_feedback(session: Session) -> None:
    v1 = [serve_caption(session, "v1-old", V1_TEXTS[i] if i < 2 else f"caption {i}", DAY_1 if i < 6 else DAY_2)
          for i in range(10)]
    serve_caption(session, "v1-old", "never delivered", DAY_2, delivered=False)
    for i, caption_id in enumerate(v1):
        queries.set_rating(session, caption_id, _owner(session, caption_id), "up" if i < 8 else "down")
    for caption_id, text in zip(v1, V1_TEXTS):
        queries.add_correction(session, caption_id, _owner(session, caption_id), text)

    v2 = [serve_caption(session, "v2-new", V2_TEXT, DAY_2) for _ in range(4)]
    queries.set_rating(session, v2[0], _owner(session, v2[0]), "down")
    queries.set_rating(session, v2[0], next(_users), "down")
    queries.set_rating(session, v2[1], _owner(session, v2[1]), "down")
    queries.set_rating(session, v2[2], _owner(session, v2[2]), "up")
    for correction in V2_CORRECTIONS:
        queries.add_correction(session, v2[0], next(_users), correction)

    for _ in range(2):
        serve_caption(session, "v0-unrated", "a caption nobody rated", DAY_1)
