"""What users said about each model version's captions: the counts behind judging versions.

Every caption records the `model_version` that wrote it, so ratings and corrections can be added
up per version. Only captions whose reply reached the user (`reply_message_id` set) count as
served: a caption nobody saw could not be rated. Plain values come back; the statistics built on
them (shares, intervals, BLEU against corrections) live with their callers.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, distinct, func, select
from sqlalchemy.orm import Session

from store.models import Caption, Correction, Rating


@dataclass(frozen=True)
class VersionCounts:
    """One version's captions and the feedback on them; `corrected` counts captions, not corrections."""

    version: str
    served: int
    up: int
    down: int
    corrected: int
    first_served_at: datetime | None


@dataclass(frozen=True)
class CorrectedCaption:
    """A served caption and every correction users typed for it (its references)."""

    caption_id: int
    text: str
    corrections: tuple[str, ...]


@dataclass(frozen=True)
class RatedCaption:
    """One rating, dated by when its caption was served (so a version's share can be followed over time)."""

    version: str
    served_at: datetime
    value: str


_SERVED = Caption.reply_message_id.is_not(None)


def version_feedback_counts(session: Session) -> list[VersionCounts]:
    """Per version that served a caption: served, 👍, 👎 and corrected captions; oldest version first."""
    served = dict(
        session.execute(select(Caption.model_version, func.count(Caption.id)).where(_SERVED).group_by(Caption.model_version)).all()
    )
    first = dict(
        session.execute(select(Caption.model_version, func.min(Caption.created_at)).where(_SERVED).group_by(Caption.model_version)).all()
    )
    ratings = {
        version: (int(up or 0), int(down or 0))
        for version, up, down in session.execute(
            select(
                Caption.model_version,
                func.sum(case((Rating.value == "up", 1), else_=0)),
                func.sum(case((Rating.value == "down", 1), else_=0)),
            )
            .join(Rating, Rating.caption_id == Caption.id)
            .where(_SERVED)
            .group_by(Caption.model_version)
        ).all()
    }
    corrected = dict(
        session.execute(
            select(Caption.model_version, func.count(distinct(Caption.id)))
            .join(Correction, Correction.caption_id == Caption.id)
            .where(_SERVED)
            .group_by(Caption.model_version)
        ).all()
    )
    counts = [
        VersionCounts(version, count, *ratings.get(version, (0, 0)), corrected.get(version, 0), first.get(version))
        for version, count in served.items()
    ]
    return sorted(counts, key=lambda c: (c.first_served_at is None, c.first_served_at, c.version))


def corrected_captions(session: Session) -> dict[str, list[CorrectedCaption]]:
    """Version → its corrected captions, each with all its corrections, oldest caption first."""
    rows = session.execute(
        select(Caption.model_version, Caption.id, Caption.text, Correction.text)
        .join(Correction, Correction.caption_id == Caption.id)
        .where(_SERVED)
        .order_by(Caption.id, Correction.id)
    ).all()
    grouped: dict[str, dict[int, tuple[str, list[str]]]] = {}
    for version, caption_id, text, correction in rows:
        grouped.setdefault(version, {}).setdefault(caption_id, (text, []))[1].append(correction)
    return {
        version: [CorrectedCaption(caption_id, text, tuple(refs)) for caption_id, (text, refs) in captions.items()]
        for version, captions in grouped.items()
    }


def rating_history(session: Session) -> list[RatedCaption]:
    """Every rating with its caption's version and serving time, oldest first.

    Grouping by day or week happens in Python: truncating timestamps differs between PostgreSQL
    and SQLite, and one row per rating is small next to the photos each one stands for.
    """
    rows = session.execute(
        select(Caption.model_version, Caption.created_at, Rating.value)
        .join(Rating, Rating.caption_id == Caption.id)
        .where(_SERVED)
        .order_by(Caption.created_at, Rating.id)
    ).all()
    return [RatedCaption(version, served_at, value) for version, served_at, value in rows]
