"""Model version subcommands: `captionbot retrain`, `captionbot models`, `captionbot model activate VERSION`,
`captionbot model export-encoder [--model DIR]`.

Each brings the database up to date first (captionbot.database), so they work in a fresh DATA_DIR.
`retrain` runs worker.retrain_version here, in the foreground, under the same one-run lock as /retrain.
`model activate` checks that the bundle's decoder loads before making it active; workers then
switch before their next job (and refuse it, keeping their model, if it still fails to load).
`model export-encoder` makes (or finds) the bundle's encoder as ONNX in ENCODER_CACHE_DIR, the file
caption workers read, so that none of them exports it at its first start.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def register(commands: argparse._SubParsersAction) -> None:
    retrain = commands.add_parser("retrain", help="retrain on Flickr8k train + users' feedback; promote if not worse")
    retrain.add_argument("--from-scratch", action="store_true", default=None, help="a new decoder instead of fine-tuning the active one")
    retrain.add_argument("--epochs", type=int, help="training epochs (default: RETRAIN_EPOCHS)")
    retrain.add_argument("--learning-rate", type=float, help="default: RETRAIN_LEARNING_RATE")
    retrain.add_argument("--train-limit", type=int, help="first N Flickr8k train images only")
    retrain.add_argument("--val-limit", type=int, help="first N Flickr8k val images only")
    retrain.add_argument("--json", action="store_true", help="print the whole report as JSON")
    retrain.set_defaults(handler=run_retrain)

    models = commands.add_parser("models", help="list model versions: status, val scores, users' feedback, parent; workers' versions")
    models.add_argument("--json", action="store_true",
                        help="print every version's evaluation from feedback as JSON, with BLEU-4 / CIDEr-D against corrections")
    models.set_defaults(handler=run_models)

    model = commands.add_parser("model", help="manage model versions")
    actions = model.add_subparsers(dest="action", required=True)
    activate = actions.add_parser("activate", help="make VERSION the active model (workers switch before their next job)")
    activate.add_argument("version")
    activate.add_argument("--no-check", action="store_true", help="skip loading the bundle's decoder first")
    activate.set_defaults(handler=run_activate)
    export = actions.add_parser("export-encoder", help="export the bundle's encoder to ONNX for the workers (once per weights); print its path")
    export.add_argument("--model", type=Path, help="the bundle (default: MODEL_DIR)")
    export.set_defaults(handler=run_export_encoder)


def _redis_if_configured(settings):
    """The service's Redis when REDIS_URL is set; None otherwise (no embedded server just to look)."""
    from service.runtime import redis_from_url

    return redis_from_url(settings.redis_url, settings.redis_timeout_s) if settings.redis_url else None


def run_retrain(args: argparse.Namespace) -> int:
    from captionbot.database import migrated_database_url
    from service.retrain_lock import LockKeeper, RetrainLock
    from service.runtime import redis_from_url, resolve_redis_url
    from service.settings import get_settings
    from training.promotion import describe_progress, format_report
    from training.retrain import RetrainError
    from worker.retrain_version import retrain, retrain_options

    settings = get_settings()
    migrated_database_url(settings)
    options = retrain_options(
        settings, epochs=args.epochs, learning_rate=args.learning_rate, from_scratch=args.from_scratch,
        train_limit=args.train_limit, val_limit=args.val_limit,
    )
    url, embedded = resolve_redis_url(settings)
    redis = redis_from_url(url, settings.redis_timeout_s)
    lock = RetrainLock(redis)
    try:
        token = lock.acquire(settings.retrain_lock_ttl_s, requested_by="the command line")
        keeper = LockKeeper(lock, token or "", settings.retrain_lock_ttl_s)
        if token is None or not keeper.claim():
            holder = lock.holder() or {}
            print(f"A retraining is already {holder.get('state', 'running')} (since {holder.get('since', '?')}); not starting another.",
                  file=sys.stderr)
            return 1
        try:
            report = retrain(settings=settings, options=options,
                             on_progress=lambda event: print(describe_progress(event), file=sys.stderr, flush=True))
        except RetrainError as error:
            print(f"Retraining failed: {error}", file=sys.stderr)
            return 1
        finally:
            keeper.release()
    finally:
        redis.close()
        if embedded is not None:
            embedded.close()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        summary, table = format_report(report)
        print(f"{summary}\n\n{table}\n\nCurves: {report['curves_png']}")
    return 0


def run_models(args: argparse.Namespace) -> int:
    from captionbot.database import migrated_database_url
    from service.feedback_evaluation import evaluate_versions
    from service.model_versions import ActivationError, ensure_active_version, format_versions, served_versions, version_rows
    from service.settings import get_settings
    from store.db import make_engine, make_session_factory, session_scope

    settings = get_settings()
    engine = make_engine(migrated_database_url(settings), settings.database_timeouts)
    factory = make_session_factory(engine)
    try:
        with session_scope(factory) as session:
            try:
                ensure_active_version(session, settings.model_dir)
            except ActivationError as error:
                log.warning("no active version and no default bundle to register: %s", error)
        rows = version_rows(factory, limit=1000)
        if args.json:
            print(json.dumps(_versions_json(factory, rows), indent=2))
            return 0
        with session_scope(factory) as session:
            feedback = {evaluation.version: evaluation for evaluation in evaluate_versions(session)}
        redis = _redis_if_configured(settings)
        served = served_versions(redis) if redis is not None else None
        print(format_versions(rows, served, feedback))
    finally:
        engine.dispose()
    return 0


def _versions_json(factory, rows) -> dict:
    """Registered versions (newest first) and any other that served captions, each with its
    status, val scores and evaluation from feedback (BLEU-4 / CIDEr-D against corrections)."""
    from service.feedback_evaluation import VersionEvaluation
    from store.db import session_scope
    from worker.version_report import evaluate_with_scores

    with session_scope(factory) as session:
        evaluations = {evaluation.version: evaluation for evaluation in evaluate_with_scores(session)}
    registered = {row.version: row for row in rows}
    versions = []
    for version in [*registered, *(v for v in evaluations if v not in registered)]:
        row = registered.get(version)
        feedback = evaluations.get(version) or VersionEvaluation(version, 0, 0, 0, 0)
        versions.append({
            **feedback.as_json(),
            "status": row.status if row else None,
            "parent": row.parent if row else None,
            "val_bleu4": row.bleu4 if row else None,
            "val_cider": row.cider if row else None,
        })
    return {"versions": versions}


def run_activate(args: argparse.Namespace) -> int:
    from captionbot.database import migrated_database_url
    from service.model_versions import ActivationError, activate
    from service.settings import get_settings
    from store.db import make_engine, make_session_factory, session_scope
    from store.queries import get_model_version

    settings = get_settings()
    engine = make_engine(migrated_database_url(settings), settings.database_timeouts)
    factory = make_session_factory(engine)
    try:
        if not args.no_check:
            with session_scope(factory) as session:
                model = get_model_version(session, args.version)
                path = None if model is None else Path(model.path)
            if path is not None and not _decoder_loads(path):
                return 1
        try:
            with session_scope(factory) as session:
                model, previous = activate(session, args.version)
        except ActivationError as error:
            print(f"Not activated: {error}", file=sys.stderr)
            return 1
    finally:
        engine.dispose()
    print(f"{model.version} is the active model" + (f" (was {previous})." if previous else " (already was)."))
    return 0


def _decoder_loads(path) -> bool:
    from captioning.bundle import BundleError, load_decoder

    try:
        load_decoder(path)
    except (BundleError, OSError) as error:
        print(f"Not activated: the bundle at {path} does not load ({error})", file=sys.stderr)
        return False
    return True


def run_export_encoder(args: argparse.Namespace) -> int:
    """The encoder as Captioner.load builds it for this bundle (with its fine-tuned top), in the cache."""
    from captioning.encoder_files import bundle_onnx
    from captioning.onnx_sessions import EncoderRuntimeError
    from service.settings import get_settings

    settings = get_settings()
    bundle = args.model or settings.model_dir
    try:
        path = bundle_onnx(bundle, settings.resolved_encoder_cache_dir, settings.resnet50_weights or "imagenet")
    except EncoderRuntimeError as error:
        print(f"Not exported: {error}", file=sys.stderr)
        return 1
    print(path)
    return 0
