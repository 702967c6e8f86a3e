"""Fuzzing, long: every target of tests/fuzz/fuzz_targets.py (the worker's photo decoding, open_image
with every Pillow decoder, the format sniffer, callback data, correction text, the checkpoint
reader) fed mutated seeds, mutants of earlier inputs that passed, and random bytes.

An exception other than the target's declared one is a crash: counted, its input saved under
var/fuzz-crashes/ (replay it with the target's check), and the run goes on. So is an input that
takes longer than --input-timeout seconds. Reported per target: inputs, results, declared errors,
crashes, the slowest input (kept in var/fuzz-slowest/); for the run: peak resident memory.

Run: python benchmarks/fuzz.py [--inputs 100000] [--seed 0] [--targets photo_decoding,…]
Writes benchmarks/results/fuzz.json and prints a table.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import platform
import random
import resource
import signal
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "fuzz")]

from fuzz_targets import EDIT_KINDS, TARGETS, Target, mutate  # noqa: E402

from training.cpu import cpu_model  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "fuzz.json"
CRASHES = ROOT / "var" / "fuzz-crashes"
SLOWEST = ROOT / "var" / "fuzz-slowest"  # each target's slowest input, to look into
POOL_SIZE = 256


class InputTimeout(Exception):
    """An input ran past --input-timeout."""


def _on_alarm(signum, frame):
    raise InputTimeout


def next_input(rng: random.Random, seeds: list[bytes], pool: list[bytes]) -> bytes:
    """Mostly mutated seeds; some mutants of inputs that passed (to go deeper); some random bytes."""
    roll = rng.random()
    if roll < 0.05:
        return rng.randbytes(rng.randrange(0, 512))
    base = rng.choice(pool) if pool and roll < 0.35 else rng.choice(seeds)
    edits = []
    for _ in range(rng.randint(1, 8)):
        payload = rng.choice(seeds)[: rng.randrange(0, 64)] if rng.random() < 0.1 else rng.randbytes(rng.randrange(1, 9))
        edits.append((rng.randrange(EDIT_KINDS), rng.randrange(0, max(1, len(base) + 1)), rng.randrange(0, 65), payload))
    return mutate(base, edits)


def crash_record(target: Target, data: bytes, error: BaseException) -> dict:
    frames = traceback.extract_tb(error.__traceback__)
    where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
    digest = hashlib.sha256(data).hexdigest()[:16]
    CRASHES.mkdir(parents=True, exist_ok=True)
    path = CRASHES / f"{target.name}-{digest}.bin"
    path.write_bytes(data)
    return {"target": target.name, "error": type(error).__name__, "message": str(error)[:200], "where": where,
            "reproducer": str(path.relative_to(ROOT))}


def fuzz_target(target: Target, inputs: int, rng: random.Random, input_timeout: float) -> dict:
    seeds = list(target.seeds())
    pool: list[bytes] = []
    counts = {"inputs": 0, "results": 0, "declared_errors": 0, "crashes": 0}
    crashes: dict[tuple[str, str], dict] = {}
    slowest = (0.0, b"")
    started = time.perf_counter()
    for _ in range(inputs):
        data = next_input(rng, seeds, pool)
        counts["inputs"] += 1
        signal.setitimer(signal.ITIMER_REAL, input_timeout)
        began = time.perf_counter()
        try:
            target.check(data)
            counts["results"] += 1
            if len(pool) < POOL_SIZE:
                pool.append(data)
            else:
                pool[rng.randrange(POOL_SIZE)] = data
        except target.declared:
            counts["declared_errors"] += 1
        except Exception as error:  # a crash: recorded once per kind and place, the run goes on
            counts["crashes"] += 1
            record = crash_record(target, data, error)
            crashes.setdefault((record["error"], record["where"]), {**record, "count": 0})["count"] += 1
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        took = time.perf_counter() - began
        if took > slowest[0]:
            slowest = (took, data)
    seconds = time.perf_counter() - started
    SLOWEST.mkdir(parents=True, exist_ok=True)
    (SLOWEST / f"{target.name}.bin").write_bytes(slowest[1])
    return {
        **counts,
        "seconds": round(seconds, 1),
        "inputs_per_s": round(counts["inputs"] / seconds, 1) if seconds else None,
        "slowest_input_ms": round(slowest[0] * 1000, 1),
        "slowest_input_bytes": len(slowest[1]),
        "crash_kinds": list(crashes.values()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--inputs", type=int, default=100_000, help="inputs in all, shared equally by the targets")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--input-timeout", type=float, default=10.0)
    parser.add_argument("--targets", default=",".join(target.name for target in TARGETS))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    chosen = [target for target in TARGETS if target.name in args.targets.split(",")]
    signal.signal(signal.SIGALRM, _on_alarm)
    rng = random.Random(args.seed)
    started = time.perf_counter()
    per_target = {}
    for target in chosen:
        per_target[target.name] = fuzz_target(target, args.inputs // len(chosen), rng, args.input_timeout)
        row = per_target[target.name]
        print(f"{target.name:22} {row['inputs']:>7} inputs  {row['results']:>7} results  {row['declared_errors']:>7} declared"
              f"  {row['crashes']:>4} crashes  slowest {row['slowest_input_ms']:>7.1f} ms  {row['inputs_per_s']:>7.1f}/s",
              flush=True)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report = {
        "command": "python benchmarks/fuzz.py " + " ".join(sys.argv[1:]),
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "seed": args.seed,
        "inputs": sum(row["inputs"] for row in per_target.values()),
        "crashes": sum(row["crashes"] for row in per_target.values()),
        "seconds": round(time.perf_counter() - started, 1),
        "peak_rss_mb": round(peak_rss_mb, 1),
        "slowest_input_ms": max(row["slowest_input_ms"] for row in per_target.values()),
        "targets": per_target,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{report['inputs']} inputs, {report['crashes']} crashes, peak RSS {report['peak_rss_mb']} MB, "
          f"slowest input {report['slowest_input_ms']} ms, {report['seconds']} s; wrote {args.out}")
    return 1 if report["crashes"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
