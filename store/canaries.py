"""Queries for canary rollouts (store.models.CanaryRollout), beside store.queries' others.

Like store.queries: a Session first, flush rather than commit, plain values back.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from store.models import CanaryRollout, Caption, Rating, utcnow

# How a canary ended (CanaryRollout.outcome).
PROMOTED, ENDED, ROLLED_BACK, SUPERSEDED = "promoted", "ended", "rolled back", "superseded"


def running_canary(session: Session) -> CanaryRollout | None:
    return session.scalars(select(CanaryRollout).where(CanaryRollout.running.is_(True))).first()


def add_canary(session: Session, *, version: str, baseline_version: str, fraction: float,
               started_by: int | None) -> CanaryRollout:
    """A running canary; the unique `running` column refuses a second one (IntegrityError)."""
    canary = CanaryRollout(version=version, baseline_version=baseline_version, fraction=fraction,
                           running=True, started_by=started_by, started_at=utcnow())
    session.add(canary)
    session.flush()
    return canary


def finish_canary(session: Session, canary_id: int, outcome: str, notes: str | None = None) -> bool:
    """End a running canary; False if it had already ended.

    One conditional UPDATE, so of two processes deciding at once (two ratings arriving together)
    exactly one goes on to promote and tell the admins.
    """
    ended = session.execute(
        update(CanaryRollout)
        .where(CanaryRollout.id == canary_id, CanaryRollout.running.is_(True))
        .values(running=None, ended_at=utcnow(), outcome=outcome, notes=notes)
        .execution_options(synchronize_session=False)
    )
    session.expire_all()
    return ended.rowcount == 1


def rating_counts(session: Session, version: str, since: datetime) -> tuple[int, int]:
    """(👍, 👍 + 👎) on the captions `version` made since `since`."""
    up, total = session.execute(
        select(func.coalesce(func.sum(case((Rating.value == "up", 1), else_=0)), 0), func.count(Rating.id))
        .join(Caption, Caption.id == Rating.caption_id)
        .where(Caption.model_version == version, Caption.created_at >= since)
    ).one()
    return int(up), int(total)
