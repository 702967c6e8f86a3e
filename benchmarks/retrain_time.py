"""Retraining time on this machine (Flickr8k train + N feedback photos, fine-tuning the active model),
and what a worker's switch to the new version costs the jobs it serves meanwhile.

Feedback photos: real users' photos do not exist here and the Flickr8k test split is held out, so
they are the 91 unassigned Flickr8k images plus re-cropped, mirrored copies of train images (new
bytes, so each is a new photo to encode), each with one of its reference captions as a user's
correction and, for every fourth photo, another as a 👍-rated caption. They go through the real
store (SQLite) and media store, so `worker.retrain_version` reads them as it reads users' feedback.

The switch: a CaptionerHolder (what a ModelWorker uses) captions a photo per "job" in a loop; the
new version is activated mid-way; every job's latency and model version are recorded until the
new version has served for a while. Failed jobs are counted (there should be none).

A new kind of photo (`--new-kind N`): the first N feedback photos are turned into pencil sketches,
which Flickr8k lacks (no caption of it says "sketch"), and corrected with one phrasing: "a pencil
sketch of " + one of the photo's captions. After retraining, 100 val photos turned into sketches
the same way (new photos, never trained on) are captioned by the active and the new model, and the
share of captions that use the phrasing is reported: what users taught, carried over to new photos;
so is the share of the 1,000 ordinary val photos that the new model gives the phrasing anyway.

Full run (about half an hour; the Flickr8k feature cache of the active model's encoder is reused):
    python benchmarks/retrain_time.py --feedback 1000 --new-kind 300
Quick check of the script:
    python benchmarks/retrain_time.py --feedback 40 --train-limit 300 --val-limit 100 --epochs 1
Writes benchmarks/results/retrain_time.json.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from service.settings import Settings, get_settings
from store.db import make_engine, make_session_factory, session_scope
from store.models import Base
from training.cpu import cpu_flags, cpu_model


def feedback_photo(path: Path, seed: int) -> bytes:
    """A re-cropped, maybe mirrored copy of an image: new bytes, still a real photo."""
    rng = np.random.default_rng(seed)
    with Image.open(path) as image:
        image = image.convert("RGB")
        width, height = image.size
        left, top = int(rng.integers(0, width // 8 + 1)), int(rng.integers(0, height // 8 + 1))
        image = image.crop((left, top, width - int(rng.integers(0, width // 8 + 1)), height - int(rng.integers(0, height // 8 + 1))))
        if rng.random() < 0.5:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=90)
        return buffer.getvalue()


NEW_KIND_PHRASE = "pencil sketch"
TRANSFER_PHOTOS = 100


def pencil_sketch(photo: bytes) -> bytes:
    """A photo redrawn as a pencil sketch (greyscale colour-dodge of its blurred negative)."""
    with Image.open(io.BytesIO(photo)) as image:
        grey = ImageOps.grayscale(image)
    blurred = np.asarray(ImageOps.invert(grey).filter(ImageFilter.GaussianBlur(6)), np.float32)
    sketch = np.clip(np.asarray(grey, np.float32) * 255.0 / np.maximum(255.0 - blurred, 1.0), 0, 255)
    buffer = io.BytesIO()
    Image.fromarray(sketch.astype(np.uint8)).convert("RGB").save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def sketch_correction(reference: str) -> str:
    """The one phrasing every sketch's correction uses."""
    return f"a {NEW_KIND_PHRASE} of " + reference.strip().rstrip(" .").lower()


def add_feedback(settings: Settings, count: int, new_kind: int = 0) -> dict[str, int]:
    """`count` photos with captions, corrections and 👍 ratings, through the store and media store;
    the first `new_kind` of them are pencil sketches corrected with one phrasing (and never 👍)."""
    from store.queries import add_correction, create_request, record_caption, record_media, set_rating
    from training.flickr8k import _read_captions
    from worker.media import MediaStore

    captions, image_dir = _read_captions(settings.flickr8k_dir)
    splits = settings.flickr8k_dir / "splits" / "splits.tsv"
    unassigned = [line.split("\t")[0] for line in splits.read_text().splitlines()[1:] if line.endswith("\tunassigned")] if splits.exists() else []
    train = [line.strip() for line in (settings.flickr8k_dir / "splits" / "Flickr_8k.trainImages.txt").read_text().split() if line.strip()]
    sources = (unassigned + train)[:count]
    media = MediaStore(settings.resolved_media_dir)
    engine = make_engine(settings.resolved_database_url, settings.database_timeouts)
    factory = make_session_factory(engine)
    upvotes = 0
    with session_scope(factory) as session:
        for i, name in enumerate(sources):
            refs = captions[name]
            sketch = i < new_kind
            photo = feedback_photo(image_dir / name, i)
            stored = media.store(pencil_sketch(photo) if sketch else photo)
            user = 1_000_000 + i % 50
            request = create_request(session, user_id=user, chat_id=user, message_id=i + 1, file_id=f"f{i}", file_unique_id=f"u{i}", file_size=None)
            record_media(session, request.id, media_path=str(stored.path), media_sha256=stored.sha256)
            caption = record_caption(session, request.id, text=refs[1], model_version="benchmark", beam=3, latency_ms=100.0)
            add_correction(session, caption.id, user, sketch_correction(refs[0]) if sketch else refs[0])
            if i % 4 == 0 and not sketch:
                set_rating(session, caption.id, user + 1, "up")
                upvotes += 1
    engine.dispose()
    return {"photos": len(sources), "corrections": len(sources), "upvotes": upvotes, "new_kind_photos": min(new_kind, len(sources))}


def measure_transfer(settings: Settings, report: dict) -> dict:
    """Share of new sketches (val photos, never trained on) whose caption uses the taught phrasing,
    for the active model and the new one; and, for the new one, the share of ordinary val photos
    given the phrasing anyway (where it is wrong)."""
    from captioning.captioner import Captioner
    from training.pipeline import flickr8k_captions

    _, val_paths = flickr8k_captions(settings.flickr8k_dir, "val", None)
    names = sorted(val_paths)
    photos = [pencil_sketch(feedback_photo(val_paths[n], 10_000 + i)) for i, n in enumerate(names[:TRANSFER_PHOTOS])]
    result: dict = {"photos": len(photos), "phrase": NEW_KIND_PHRASE}
    for label, bundle in (("active", report["active_bundle"]), ("new", report["bundle"])):
        captioner = Captioner.load(bundle)
        captions = [c.text for c in captioner.caption(photos, beam=settings.caption_beam)]
        result[f"{label}_share"] = round(sum(NEW_KIND_PHRASE in c for c in captions) / len(captions), 3)
        result[f"{label}_examples"] = captions[:5]
    ordinary = [c.text for c in captioner.caption([val_paths[n] for n in names], beam=settings.caption_beam)]
    result["new_share_of_ordinary_val_photos"] = round(sum(NEW_KIND_PHRASE in c for c in ordinary) / len(ordinary), 4)
    result["ordinary_val_photos"] = len(ordinary)
    return result


def measure_switch(settings: Settings, old_version: str, new_version: str, restore: str, photo: bytes, jobs_after: int = 20) -> dict:
    """Caption in a loop as a worker does, serving `old_version`; activate `new_version` mid-way; time
    every job. Afterwards `restore` is made active again (as the retraining left it)."""
    from service.model_versions import activate
    from worker.models import CaptionerHolder

    engine = make_engine(settings.resolved_database_url, settings.database_timeouts)
    factory = make_session_factory(engine)
    with session_scope(factory) as session:
        activate(session, old_version)
    holder = CaptionerHolder(settings, factory)
    holder.load_initial()
    records: list[tuple[str, float, str]] = []  # (phase, ms, version)
    failures = 0

    def job(phase: str) -> None:
        nonlocal failures
        started = time.perf_counter()
        try:
            captioner = holder.current()
            captioner.caption([photo], beam=settings.caption_beam)
        except Exception:
            failures += 1
            return
        records.append((phase, (time.perf_counter() - started) * 1000, captioner.version))

    for _ in range(20):
        job("before")
    with session_scope(factory) as session:
        activate(session, new_version)
    activated = time.perf_counter()
    switched_after = None
    after = 0
    while after < jobs_after and time.perf_counter() < activated + 300:
        job("switching" if switched_after is None else "after")
        if switched_after is None and records and records[-1][2] == new_version:
            switched_after = time.perf_counter() - activated
        after += switched_after is not None
    with session_scope(factory) as session:
        activate(session, restore)
    engine.dispose()

    def summary(phase: str) -> dict:
        times = sorted(ms for p, ms, _ in records if p == phase)
        if not times:
            return {"jobs": 0}
        return {"jobs": len(times), "median_ms": round(statistics.median(times), 1), "max_ms": round(times[-1], 1)}

    return {
        "failed_jobs": failures,
        "seconds_until_switched": None if switched_after is None else round(switched_after, 1),
        "jobs_served_by_old_model_while_loading": sum(1 for p, _, v in records if p == "switching" and v != new_version),
        "before": summary("before"), "while_loading": summary("switching"), "after": summary("after"),
    }


def main() -> None:
    settings = get_settings()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feedback", type=int, default=1000, help="feedback photos (default 1000)")
    parser.add_argument("--new-kind", type=int, default=0, help="of them, this many pencil sketches with one new phrasing (default 0)")
    parser.add_argument("--train-limit", type=int, help="first N Flickr8k train images (default: all 6,000)")
    parser.add_argument("--val-limit", type=int, help="first N Flickr8k val images (default: all 1,000)")
    parser.add_argument("--epochs", type=int, help="default: RETRAIN_EPOCHS")
    parser.add_argument("--model", type=Path, default=settings.model_dir, help="the active model to fine-tune")
    parser.add_argument("--workdir", type=Path, default=settings.data_dir / "benchmark-retrain",
                        help="database, media and new versions (emptied first)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "retrain_time.json")
    args = parser.parse_args()

    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    settings = Settings(
        **{**settings.model_dump(), "database_url": f"sqlite:///{args.workdir / 'bench.db'}", "media_dir": args.workdir / "media",
           "models_root": args.workdir / "models", "model_dir": args.model, "features_dir": settings.resolved_features_dir}
    )
    engine = make_engine(settings.resolved_database_url, settings.database_timeouts)
    Base.metadata.create_all(engine)
    engine.dispose()
    prepared = add_feedback(settings, args.feedback, args.new_kind)

    from training.promotion import describe_progress
    from worker.retrain_version import retrain, retrain_options

    options = retrain_options(settings, epochs=args.epochs, train_limit=args.train_limit, val_limit=args.val_limit)
    started = time.perf_counter()
    report = retrain(settings=settings, options=options,
                     on_progress=lambda e: print(f"[{time.perf_counter() - started:7.1f} s] {describe_progress(e)}", flush=True))
    total = time.perf_counter() - started
    photo = (settings.flickr8k_dir / "images" / sorted((settings.flickr8k_dir / "images").iterdir())[0].name).read_bytes()
    restore = report["version"] if report["promoted"] else report["parent_version"]
    transfer = measure_transfer(settings, report) if args.new_kind else None
    switch = measure_switch(settings, report["parent_version"], report["version"], restore, photo)
    result = {
        "machine": {"cpus": os.cpu_count(), "cpu": cpu_model(), "avx512": any(f.startswith("avx512") for f in cpu_flags()),
                    "python": platform.python_version()},
        "command": "python benchmarks/retrain_time.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None and k in ("feedback", "new_kind", "train_limit", "val_limit", "epochs")),
        "feedback": prepared, "options": vars(options), "retrain_seconds": round(total, 1), "stage_seconds": report["seconds"],
        "data_counts": report["data_counts"], "promoted": report["promoted"], "decision": report["decision"],
        "val": report["metrics"]["val"], "active_val": report["active_metrics"]["val"],
        "feedback_heldout": report["metrics"]["feedback_heldout"], "active_feedback_heldout": report["active_metrics"]["feedback_heldout"],
        "history": report["history"], "new_word_bias": report.get("new_word_bias"), "transfer": transfer, "switch": switch,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps({k: result[k] for k in ("retrain_seconds", "stage_seconds", "promoted", "decision", "transfer", "switch")}, indent=2))


if __name__ == "__main__":
    main()
