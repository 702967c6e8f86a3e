"""Two captioners side by side on this machine: one JPEG to a beam-3 caption, the two models taking
turns photo by photo (A B A B…), so both see the same machine load; the ratio is per pair.

Run: python benchmarks/captioner_speed_pair.py --model var/runs/lite2-v8/bundle --against models/default
Writes benchmarks/results/captioner_speed_pair.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from service.settings import get_settings
from training.cpu import cpu_model


def main() -> None:
    settings = get_settings()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, required=True, help="the model measured")
    parser.add_argument("--against", type=Path, default=settings.model_dir, help="the model it is compared with")
    parser.add_argument("--images", type=Path, default=settings.flickr8k_dir / "images")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--beam", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "captioner_speed_pair.json")
    args = parser.parse_args()

    from captioning.captioner import Captioner

    models = {"model": Captioner.load(args.model), "against": Captioner.load(args.against)}
    payloads = [path.read_bytes() for path in sorted(args.images.glob("*.jpg"))[: args.runs]]
    for captioner in models.values():  # first calls trace and fill caches: not timed
        captioner.caption(payloads[:2], beam=args.beam)
    timings: dict[str, list[float]] = {name: [] for name in models}
    for data in payloads:
        for name, captioner in models.items():
            started = time.perf_counter()
            captioner.caption([data], beam=args.beam)
            timings[name].append((time.perf_counter() - started) * 1000)
    ratios = [a / b for a, b in zip(timings["model"], timings["against"])]
    result = {
        "cpu": cpu_model(),
        "runs": len(payloads),
        "beam": args.beam,
        **{name: {"version": models[name].version, "encoder": models[name].encoder.weights_id,
                  "median_ms": round(statistics.median(t), 1), "p95_ms": round(sorted(t)[int(0.95 * (len(t) - 1))], 1)}
           for name, t in timings.items()},
        "ratio_median": round(statistics.median(ratios), 3),
        "ratio_quartiles": [round(q, 3) for q in statistics.quantiles(ratios, n=4)],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
