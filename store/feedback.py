"""Feedback as the trainer and the admins see it: training examples, one user's history, exclusion.

An admin can exclude a user whose feedback looks like abuse: nothing of theirs is deleted (it can be
looked at, and /include undoes the exclusion), but the trainer is told, so it leaves it out.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.models import Caption, CaptionRequest, Correction, Rating, User, utcnow


@dataclass(frozen=True)
class FeedbackExample:
    """A photo and a caption people vouched for: a correction they typed, or a caption rated 👍.

    `user_id` is the correction's author (None for a 👍 caption, which may have several raters);
    `user_excluded` says an admin excluded that author, or every 👍 came from excluded users.
    """

    media_path: str
    media_sha256: str | None
    text: str
    source: Literal["correction", "upvote"]
    caption_id: int
    user_id: int | None = None
    user_excluded: bool = False


def _excluded_users():
    return select(User.telegram_id).where(User.training_excluded_at.is_not(None))


def feedback_examples(session: Session) -> list[FeedbackExample]:
    """Training data from users: every correction, and every caption with a 👍 and no 👎.

    Only requests whose photo was kept (media_path set) count; oldest first, so runs repeat and
    a per-user cap keeps the same corrections each time. Excluded users' examples are returned,
    marked, so the trainer can count them; their 👎 vetoes nothing.
    """
    corrections = session.execute(
        select(
            CaptionRequest.media_path, CaptionRequest.media_sha256, Correction.text, Caption.id,
            Correction.user_id, Correction.user_id.in_(_excluded_users()),
        )
        .join(Caption, Caption.request_id == CaptionRequest.id)
        .join(Correction, Correction.caption_id == Caption.id)
        .where(CaptionRequest.media_path.is_not(None))
        .order_by(Correction.id)
    ).all()
    counted = Rating.user_id.not_in(_excluded_users())
    vetoed = select(Rating.caption_id).where(Rating.value == "down", counted)
    upvoted_by_counted = select(Rating.caption_id).where(Rating.value == "up", counted)
    upvoted = session.execute(
        select(
            CaptionRequest.media_path, CaptionRequest.media_sha256, Caption.text, Caption.id,
            Caption.id.in_(upvoted_by_counted),
        )
        .join(Caption, Caption.request_id == CaptionRequest.id)
        .where(
            CaptionRequest.media_path.is_not(None),
            Caption.id.in_(select(Rating.caption_id).where(Rating.value == "up")),
            Caption.id.not_in(vetoed),
        )
        .order_by(Caption.id)
    ).all()
    return [
        FeedbackExample(path, sha, text, "correction", caption_id, user_id, bool(excluded))
        for path, sha, text, caption_id, user_id, excluded in corrections
    ] + [
        FeedbackExample(path, sha, text, "upvote", caption_id, None, not counted_up)
        for path, sha, text, caption_id, counted_up in upvoted
    ]


def set_training_excluded(session: Session, user_id: int, excluded: bool) -> bool:
    """Exclude a user's feedback from training (or count it again); False if no such user."""
    user = session.get(User, user_id)
    if user is None:
        return False
    if excluded and user.training_excluded_at is None:
        user.training_excluded_at = utcnow()
    elif not excluded:
        user.training_excluded_at = None
    session.flush()
    return True


@dataclass(frozen=True)
class FeedbackItem:
    """One rating or correction, with the caption it was about."""

    at: datetime
    kind: Literal["up", "down", "correction"]
    caption_id: int
    caption: str
    correction: str | None = None


@dataclass(frozen=True)
class UserFeedback:
    user_id: int
    excluded_at: datetime | None
    ups: int
    downs: int
    corrections: int
    newest: list[FeedbackItem]  # newest first, at most the limit asked for


def _newest_of_user(session: Session, model: type[Rating] | type[Correction], when: Any, columns: tuple[Any, ...],
                    user_id: int, limit: int) -> list[Any]:
    """(when, *columns) of a user's newest `limit` ratings or corrections, with their captions joined."""
    return list(session.execute(
        select(when, *columns)
        .join(Caption, Caption.id == model.caption_id)
        .where(model.user_id == user_id)
        .order_by(when.desc(), model.id.desc())
        .limit(limit)
    ).all())


def user_feedback(session: Session, user_id: int, limit: int = 50) -> UserFeedback | None:
    """A user's ratings and corrections, counted, and the newest `limit` of them; None if no such user."""
    user = session.get(User, user_id)
    if user is None:
        return None
    by_value = dict(
        session.execute(
            select(Rating.value, func.count(Rating.id)).where(Rating.user_id == user_id).group_by(Rating.value)
        ).all()
    )
    corrections = session.scalar(select(func.count(Correction.id)).where(Correction.user_id == user_id)) or 0
    ratings = _newest_of_user(session, Rating, Rating.updated_at, (Rating.value, Caption.id, Caption.text), user_id, limit)
    typed = _newest_of_user(session, Correction, Correction.created_at, (Caption.id, Caption.text, Correction.text), user_id, limit)
    items = [FeedbackItem(at, value, caption_id, text) for at, value, caption_id, text in ratings]
    items += [FeedbackItem(at, "correction", caption_id, said, text) for at, caption_id, said, text in typed]
    items.sort(key=lambda item: item.at, reverse=True)
    return UserFeedback(
        user_id=user_id,
        excluded_at=user.training_excluded_at,
        ups=by_value.get("up", 0),
        downs=by_value.get("down", 0),
        corrections=corrections,
        newest=items[:limit],
    )
