"""A retraining run as a model version: registered before it starts, recorded when it ends, and
promoted (or started as a canary) when it passed the gate.

Run by the trainer (`worker.retraining.retrain`, from /retrain) and by `captionbot retrain`; the
caller holds the one-run-at-a-time lock. The training itself (training/retrain.py) needs none of
the registry, settings or Redis: this module gives it what the settings say and keeps the records.
A run that raises (or is stopped) is marked failed and the active model is untouched.
"""
from __future__ import annotations

import dataclasses
import gc
import json
import logging
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from service.canary import start_canary
from service.model_versions import TRAINING_NOTE, activate, ensure_active_version, mark_stopped_runs_failed
from service.settings import Settings, get_settings
from store.db import make_engine, make_session_factory, session_scope
from store.feedback import feedback_examples
from store.models import ModelStatus
from store.queries import add_model_version, get_model_version, set_model_status
from training.retrain import ProgressCallback, RetrainError, RetrainInputs, RetrainOptions, RetrainRun

log = logging.getLogger(__name__)


def retrain_options(settings: Settings, **overrides: Any) -> RetrainOptions:
    """RETRAIN_* settings (and CAPTION_BEAM) as options; overrides that are not None win."""
    values = {f.name: getattr(settings, f"retrain_{f.name}") for f in dataclasses.fields(RetrainOptions)
              if hasattr(settings, f"retrain_{f.name}")}
    values["beam"] = settings.caption_beam
    return RetrainOptions(**{**values, **{k: v for k, v in overrides.items() if v is not None}})


def retrain_inputs(settings: Settings) -> RetrainInputs:
    return RetrainInputs(settings.flickr8k_dir, settings.resolved_features_dir, settings.resnet50_weights,
                         settings.max_image_pixels)


def new_version_name(now: datetime | None = None) -> str:
    return f"retrain-{(now or datetime.now(timezone.utc)):%Y%m%d-%H%M%S}"


def retrain(
    requested_by: int | None = None,
    *,
    settings: Settings | None = None,
    options: RetrainOptions | None = None,
    on_progress: ProgressCallback | None = None,
    on_registered: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train, evaluate, register and maybe promote one new version; returns the report (JSON-able).

    `on_registered(version)` is called once the run's row exists, so a caller can name the run
    in its own records (the trainer job keeps it for its failure callback).
    """
    settings = settings or get_settings()
    options = options or retrain_options(settings)
    emit = on_progress or (lambda event: None)
    engine = make_engine(settings.resolved_database_url, settings.database_timeouts)
    session_factory = make_session_factory(engine)
    try:
        with session_scope(session_factory) as session:
            stale = mark_stopped_runs_failed(session)
            if stale:
                log.warning("marked runs left by a stopped trainer as failed: %s", ", ".join(stale))
            active = ensure_active_version(session, settings.model_dir)
            version = new_version_name()
            while get_model_version(session, version) is not None:  # two runs within a second
                time.sleep(1)
                version = new_version_name()
            run_dir = settings.resolved_models_root / version
            parent, parent_path = active.version, Path(active.path)
            add_model_version(
                session, version=version, encoder=active.encoder, path=str(run_dir / "bundle"),
                parent_version=parent, notes=f"{TRAINING_NOTE} (requested by {requested_by or 'the command line'})",
            )
            examples = feedback_examples(session)
        try:
            if on_registered is not None:
                on_registered(version)
            run = RetrainRun(retrain_inputs(settings), options, emit, version, run_dir, parent, parent_path, requested_by)
            report = run.execute(examples)
        except BaseException as error:  # stopped or broken: the run is failed, the active model stays
            reason = str(error) if isinstance(error, RetrainError) else f"{error.__class__.__name__}: {error}"
            with session_scope(session_factory) as session:
                set_model_status(session, version, ModelStatus.failed, notes=f"failed: {reason}"[:2000])
            raise
        with session_scope(session_factory) as session:
            model = get_model_version(session, version)
            model.metrics = {"val": report["metrics"]["val"], "feedback_heldout": report["metrics"]["feedback_heldout"],
                             "search": report["search"], "active_at_training": report["active_metrics"]}
            model.data_counts = report["data_counts"]
            model.notes = report["decision"]
            if report["promoted"] and settings.canary_fraction:  # passed the gate: first a share of photos
                start_canary(session, version, settings.canary_fraction, started_by=None, replace=True)
                report["canary_fraction"], report["status"] = settings.canary_fraction, "canary"
            elif report["promoted"]:
                activate(session, version)  # the previous one is retired in the same commit
        (run_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        log.info("retraining %s: %s", version, report["decision"])
        return report
    finally:
        engine.dispose()
        gc.collect()
