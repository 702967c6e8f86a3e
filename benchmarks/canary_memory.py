"""A caption worker's resident memory with one model, and with a canary's decoder loaded beside it.

What a ModelWorker does, in one fresh process: a store (SQLite, in a temporary folder) with the
shipped bundle as the active version and a copy of it under another version name as a 50 %
canary; a CaptionerHolder loads the active model and captions a photo, then loads the canary in
the background (one encoder shared, a second decoder) and captions photos of both sides. Resident
memory (VmRSS) is read after each step; the peak is ru_maxrss.

    python benchmarks/canary_memory.py      # about a minute; writes benchmarks/results/canary_memory.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import tempfile
import time
from pathlib import Path

CANARY_VERSION = "canary-copy"


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def canary_copy(bundle: Path, into: Path) -> Path:
    """The bundle under another version name: the holder checks that a config names its row."""
    copy = into / CANARY_VERSION
    shutil.copytree(bundle, copy)
    config = json.loads((copy / "config.json").read_text())
    config["version"] = CANARY_VERSION
    (copy / "config.json").write_text(json.dumps(config))
    return copy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "canary_memory.json")
    args = parser.parse_args()
    readings = {"before_import": rss_mb()}

    from service.canary import start_canary
    from service.model_versions import register_bundle
    from service.settings import Settings, get_settings
    from store.db import make_engine, make_session_factory, session_scope
    from store.models import Base, ModelStatus
    from training.cpu import cpu_flags, cpu_model
    from worker.models import CaptionerHolder

    base = get_settings()
    photo = sorted((base.flickr8k_dir / "images").iterdir())[0].read_bytes()
    with tempfile.TemporaryDirectory() as workdir:
        work = Path(workdir)
        settings = Settings(**{**base.model_dump(), "database_url": f"sqlite:///{work / 'store.db'}", "models_root": work / "models"})
        engine = make_engine(settings.resolved_database_url, settings.database_timeouts)
        Base.metadata.create_all(engine)
        factory = make_session_factory(engine)
        with session_scope(factory) as session:
            register_bundle(session, settings.model_dir)
            register_bundle(session, canary_copy(settings.model_dir, work), status=ModelStatus.candidate)
            start_canary(session, CANARY_VERSION, 0.5, started_by=None)

        holder = CaptionerHolder(settings, factory)
        started = time.perf_counter()
        active = holder.load_initial()
        active.caption([photo])
        readings["active_loaded"] = rss_mb()
        load_active_s = time.perf_counter() - started

        started = time.perf_counter()
        holder.refresh(force=True)
        holder.wait_for_load(300)
        load_canary_s = time.perf_counter() - started
        served: dict[str, int] = {}
        for request_id in range(1, 21):
            captioner = holder.for_request(request_id)
            captioner.caption([photo])
            served[captioner.version] = served.get(captioner.version, 0) + 1
        readings["active_and_canary_loaded"] = rss_mb()
        engine.dispose()

    result = {
        "machine": {"cpus": os.cpu_count(), "cpu": cpu_model(), "avx512": any(f.startswith("avx512") for f in cpu_flags()),
                    "python": platform.python_version()},
        "model": str(base.model_dir),
        "rss_mb": {k: round(v, 1) for k, v in readings.items()},
        "second_decoder_mb": round(readings["active_and_canary_loaded"] - readings["active_loaded"], 1),
        "rss_mb_peak": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "load_s": {"active": round(load_active_s, 1), "canary": round(load_canary_s, 1)},
        "captions_by_version_of_20_requests": served,
        "target_mb": 1200,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
