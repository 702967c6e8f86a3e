"""Seeded captions and ratings for canary tests: `up` 👍 and `down` 👎 on captions made by a version."""
from __future__ import annotations

import itertools

from sqlalchemy.orm import Session

from store.queries import create_request, record_caption, set_rating

_raters = itertools.count(700_000)


def seed_ratings(session: Session, version: str, up: int, down: int) -> None:
    """One new user, request and caption per rating, as if each had sent a photo and rated it."""
    for value in ["up"] * up + ["down"] * down:
        user = next(_raters)
        request = create_request(session, user_id=user, chat_id=user, message_id=1, file_id="seeded",
                                 file_unique_id=f"seeded-{user}", file_size=None)
        caption = record_caption(session, request.id, text="a seeded caption", model_version=version, beam=3, latency_ms=1.0)
        set_rating(session, caption.id, user, value)
