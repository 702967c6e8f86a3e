"""Canary rollout: a version serves a fraction of photos beside the active one until its ratings
decide (service.canary_stats) or an admin does (/promote, /rollback).

No TensorFlow here: the bot runs `settle_canary` after each rating it stores. Workers read
`serving_plan` to know which bundles to hold and which fraction goes to the canary; each caption
records the version that made it, which is what the ratings are counted by.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from service.canary_stats import ArmCounts, CanaryDecision, decide
from service.model_versions import ActivationError, activate, servable_version
from service.settings import Settings
from store.canaries import ENDED, PROMOTED, ROLLED_BACK, SUPERSEDED, add_canary, finish_canary, rating_counts, running_canary
from store.db import session_scope
from store.models import CanaryRollout
from store.queries import active_model_version, get_model_version

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServingPlan:
    """What a caption worker should hold: the active bundle and, if one runs, the canary's."""

    active_version: str
    active_path: Path
    canary_version: str | None = None
    canary_path: Path | None = None
    canary_fraction: float = 0.0


def serving_plan(session: Session) -> ServingPlan | None:
    """None while no version is active (a fresh install, before the default is registered)."""
    active = active_model_version(session)
    if active is None:
        return None
    canary = running_canary(session)
    model = None if canary is None or canary.version == active.version else get_model_version(session, canary.version)
    if model is None:
        return ServingPlan(active.version, Path(active.path))
    return ServingPlan(active.version, Path(active.path), model.version, Path(model.path), canary.fraction)


def start_canary(session: Session, version: str, fraction: float, *, started_by: int | None,
                 replace: bool = False) -> CanaryRollout:
    """Make `version` a canary serving `fraction` of photos (0 < fraction < 1).

    The running canary's own version only changes its fraction (its ratings keep counting);
    another running canary is refused, unless `replace` (a retraining's newer version) ends it.
    """
    if not 0.0 < fraction < 1.0:
        raise ActivationError("the share must lie between 0 and 100 % (both excluded)")
    model = servable_version(session, version)
    active = active_model_version(session)
    if active is None or active.version == model.version:
        raise ActivationError(f"{version} is the active model already")
    running = running_canary(session)
    if running is not None and running.version == version:
        running.fraction = fraction
        session.flush()
        return running
    if running is not None:
        if not replace:
            raise ActivationError(f"{running.version} is already a canary; /promote or /rollback it first")
        finish_canary(session, running.id, SUPERSEDED, f"replaced by {version}")
    log.info("model %s is a canary for %.0f%% of photos beside %s", version, fraction * 100, active.version)
    return add_canary(session, version=version, baseline_version=active.version, fraction=fraction,
                      started_by=started_by)


def promote_canary(session: Session, outcome: str = PROMOTED, notes: str | None = None) -> tuple[str, str] | None:
    """Make the running canary the active version: (canary, version it replaced), or None."""
    canary = running_canary(session)
    if canary is None:
        return None
    version, baseline = canary.version, canary.baseline_version
    if not finish_canary(session, canary.id, outcome, notes):
        return None
    model, previous = activate(session, version)
    return model.version, previous or baseline


def end_canary(session: Session, outcome: str = ROLLED_BACK, notes: str | None = None) -> str | None:
    """Stop the running canary; the active version serves everyone again. Its version, or None."""
    canary = running_canary(session)
    if canary is None or not finish_canary(session, canary.id, outcome, notes):
        return None
    return canary.version


@dataclass(frozen=True)
class CanaryStanding:
    """A running canary and what its ratings say so far."""

    version: str
    baseline_version: str
    fraction: float
    decision: CanaryDecision

    def describe(self) -> str:
        return self.decision.describe(self.version, self.baseline_version)


def canary_standing(session: Session, settings: Settings) -> CanaryStanding | None:
    canary = running_canary(session)
    if canary is None:
        return None
    counts = [ArmCounts(*rating_counts(session, version, canary.started_at))
              for version in (canary.version, canary.baseline_version)]
    decision = decide(*counts, min_ratings=settings.canary_min_ratings, alpha=settings.canary_alpha)
    return CanaryStanding(canary.version, canary.baseline_version, canary.fraction, decision)


def settle_canary(session_factory: sessionmaker[Session], settings: Settings) -> CanaryStanding | None:
    """Promote or end the running canary if its ratings decide it; the standing if they did.

    Run after each stored rating. Of two ratings settling at once only one acts
    (store.canaries.finish_canary); a canary whose bundle has gone is ended instead of promoted.
    """
    with session_scope(session_factory) as session:
        standing = canary_standing(session, settings)
        if standing is None or standing.decision.verdict == "wait":
            return None
        if standing.decision.verdict == "promote":
            try:
                done = promote_canary(session, PROMOTED, standing.describe()) is not None
            except ActivationError as error:  # its bundle went away: it cannot serve everyone
                session.rollback()
                log.warning("canary %s cannot be promoted: %s", standing.version, error)
                end_canary(session, ENDED, f"could not be promoted: {error}")
                return None
        else:
            done = end_canary(session, ENDED, standing.describe()) is not None
            model = get_model_version(session, standing.version)
            if done and model is not None:
                model.notes = "canary ended: its 👍 share was significantly lower than the active model's"
        if not done:
            return None
    log.info("canary %s %s:\n%s", standing.version, "promoted" if standing.decision.verdict == "promote" else "ended",
             standing.describe())
    return standing
