"""Model versions as admins and workers see them: which one is active, switching, rolling back.

No TensorFlow here (the bot uses it): a bundle is checked by reading its config.json; a worker
does the real load and refuses a bundle that fails. Activation is one transaction: the new version
becomes active and the previous one retired together, so every worker sees one or the other.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis import Redis
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from store.canaries import PROMOTED, SUPERSEDED, finish_canary, running_canary
from service.feedback_evaluation import VersionEvaluation, format_rate, format_share
from store.db import session_scope
from store.models import ModelStatus, ModelVersion
from store.queries import (
    activate_model_version,
    active_model_version,
    add_model_version,
    get_model_version,
    list_model_versions,
)

log = logging.getLogger(__name__)
TRAINING_NOTE = "training in progress"
STOPPED_NOTE = "failed: the trainer stopped before the run finished"


class ActivationError(ValueError):
    """A version that cannot be made active, with a reason fit to show an admin."""


def read_bundle_info(bundle_dir: Path) -> dict[str, Any]:
    """A bundle's config.json as a dict; raises ActivationError if it is missing or not a bundle."""
    path = Path(bundle_dir) / "config.json"
    try:
        config = json.loads(path.read_text())
        str(config["version"]), str(config["encoder"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ActivationError(f"{bundle_dir} is not a model bundle ({error.__class__.__name__})") from error
    return config


def is_in_training(model: ModelVersion) -> bool:
    return model.status is ModelStatus.candidate and (model.notes or "").startswith(TRAINING_NOTE)


def register_bundle(session: Session, bundle_dir: Path, status: ModelStatus = ModelStatus.active) -> ModelVersion:
    """A version row for a bundle on disk (the shipped default), made active unless told otherwise.

    Two workers starting at once may both try: the loser of the race reads the winner's row.
    """
    info = read_bundle_info(bundle_dir)
    existing = get_model_version(session, str(info["version"]))
    if existing is None:
        try:
            with session.begin_nested():
                existing = add_model_version(
                    session,
                    version=str(info["version"]),
                    encoder=str(info["encoder"]),
                    path=str(Path(bundle_dir).resolve()),
                    metrics=info.get("metrics") or {},
                    data_counts=_bundle_data_counts(info.get("training") or {}),
                    notes="registered from the bundle shipped with the service",
                    status=ModelStatus.candidate,
                )
        except IntegrityError:
            existing = get_model_version(session, str(info["version"]))
    if status is ModelStatus.active and existing.status is not ModelStatus.active:
        existing = activate_model_version(session, existing.version)
    return existing


def _bundle_data_counts(training: dict[str, Any]) -> dict[str, Any]:
    return {key: training[key] for key in ("train_images", "train_captions", "val_images") if key in training}


def ensure_active_version(session: Session, default_bundle: Path) -> ModelVersion:
    """The active version; where none is registered yet, the default bundle becomes it."""
    active = active_model_version(session)
    if active is not None:
        return active
    model = register_bundle(session, default_bundle)
    log.info("registered the default bundle %s as active model version %s", default_bundle, model.version)
    return model


def servable_version(session: Session, version: str) -> ModelVersion:
    """The version's row, if it may serve photos (active or canary); ActivationError says why not."""
    model = get_model_version(session, version)
    if model is None:
        raise ActivationError(f"there is no model version {version!r}")
    if is_in_training(model):
        raise ActivationError(f"{version} is still training")
    if model.status is ModelStatus.failed:
        raise ActivationError(f"{version} failed: {model.notes or 'no reason recorded'}")
    read_bundle_info(Path(model.path))
    return model


def activate(session: Session, version: str) -> tuple[ModelVersion, str | None]:
    """Make `version` the active one; returns it and the version it replaced. A running canary
    ends (promoted, if it is this version).

    Refused for a version still training, one that failed, or one whose bundle is gone.
    """
    model = servable_version(session, version)
    previous = active_model_version(session)
    if previous is not None and previous.id == model.id:
        return model, None
    canary = running_canary(session)
    if canary is not None:  # it was measured against the version being replaced
        finish_canary(session, canary.id, PROMOTED if canary.version == version else SUPERSEDED, f"{version} was activated")
    return activate_model_version(session, version), None if previous is None else previous.version


def rollback_target(session: Session) -> ModelVersion | None:
    """The version that was active before the current one (the most recently activated retired one)."""
    active = active_model_version(session)
    query = (
        select(ModelVersion)
        .where(ModelVersion.status == ModelStatus.retired, ModelVersion.activated_at.is_not(None))
        .order_by(ModelVersion.activated_at.desc(), ModelVersion.id.desc())
    )
    for model in session.scalars(query):
        if active is None or model.id != active.id:
            return model
    return None


def mark_stopped_runs_failed(session: Session, running_version: str | None = None) -> list[str]:
    """Runs left "in training" by a trainer that died: failed, with a note. Returns their versions."""
    stopped = []
    for model in list_model_versions(session):
        if is_in_training(model) and model.version != running_version:
            model.status = ModelStatus.failed
            model.notes = STOPPED_NOTE
            stopped.append(model.version)
    session.flush()
    return stopped


@dataclass(frozen=True)
class VersionRow:
    """One line of /models and `captionbot models`, as plain values."""

    version: str
    status: str
    encoder: str
    bleu4: float | None
    cider: float | None
    parent: str | None
    created: str
    notes: str | None


def headline_scores(metrics: dict[str, Any]) -> tuple[float | None, float | None]:
    """Val BLEU-4 and CIDEr from a version's metrics, whichever way they were recorded: a retrained
    version's `val`, else beam 3 (how the workers caption), else another beam width (a bundle
    trained with `--select-beam N` records `val_beamN`), else greedy."""
    other_beams = sorted(key for key in metrics if key.startswith("val_beam") and key != "val_beam3")
    for key in ("val", "val_beam3", *other_beams, "val_greedy"):
        scores = metrics.get(key)
        if isinstance(scores, dict) and "BLEU-4" in scores:
            return scores.get("BLEU-4"), scores.get("CIDEr")
    return None, None


def version_rows(session_factory: sessionmaker[Session], limit: int = 20) -> list[VersionRow]:
    with session_scope(session_factory) as session:
        rows = []
        for model in list_model_versions(session)[:limit]:
            bleu4, cider = headline_scores(model.metrics or {})
            status = "training" if is_in_training(model) else model.status.value
            rows.append(
                VersionRow(model.version, status, model.encoder, bleu4, cider, model.parent_version,
                           model.created_at.strftime("%Y-%m-%d %H:%M"), model.notes)
            )
        return rows


def format_versions(rows: list[VersionRow], served: dict[str, str] | None = None,
                    feedback: dict[str, VersionEvaluation] | None = None) -> str:
    """A fixed-width table, newest first; `served` maps worker name → the version it serves, and
    `feedback` version → what users said (captions served, 👍 share [95 % interval], corrected)."""
    if not rows:
        return "No model versions are registered yet."
    score = lambda value: "   –  " if value is None else f"{value:6.3f}"  # noqa: E731
    feedback = feedback or {}
    # 👍 is one character but two columns wide: the header pads to 14 where the values pad to 15.
    lines = [f"{'version':<26} {'status':<9} {'BLEU-4':>6} {'CIDEr':>6} {'served':>6}  {'👍 share [95%]':<14} {'corrected':>9}  parent"]
    for row in rows:
        marker = "*" if row.status == "active" else " "
        said = feedback.get(row.version) or VersionEvaluation(row.version, 0, 0, 0, 0)
        lines.append(
            f"{marker}{row.version:<25} {row.status:<9} {score(row.bleu4)} {score(row.cider)} {said.served:>6}  "
            f"{format_share(said):<15} {format_rate(said.correction_rate):>9}  {row.parent or '–'}"
        )
    if served:
        lines.append("")
        lines += [f"worker {name}: {version}" for name, version in sorted(served.items())]
    return "\n".join(lines)


def served_versions(redis: Redis) -> dict[str, str]:
    """Worker name → the version it serves (with a loaded canary and its share, and any version it
    refused), from the live workers' RQ records."""
    from rq import Worker

    served = {}
    for key in Worker.all_keys(connection=redis):
        version, refused, canary = redis.hmget(key, "model_version", "model_refused", "model_canary")
        if version:
            name = key.split(":", 2)[-1] if isinstance(key, str) else key.decode().split(":", 2)[-1]
            served[name] = (version.decode() + (f" + canary {canary.decode()}" if canary else "")
                            + (f" (refused {refused.decode()})" if refused else ""))
    return served
