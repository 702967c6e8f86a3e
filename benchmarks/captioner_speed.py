"""Captioner speed on this machine: bundle load time, one JPEG to caption (beam 3) latency, batch
throughput for 32 images, resident memory of a loaded Captioner.

Run: python benchmarks/captioner_speed.py [--model models/default] [--runs 50]
Writes benchmarks/results/captioner_speed.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import time
from pathlib import Path

from service.settings import get_settings
from training.cpu import cpu_model


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    settings = get_settings()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=settings.model_dir)
    parser.add_argument("--images", type=Path, default=settings.flickr8k_dir / "images")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "captioner_speed.json")
    args = parser.parse_args()

    rss_before = rss_mb()
    started = time.perf_counter()
    from captioning.captioner import Captioner  # TensorFlow import counts as part of loading

    captioner = Captioner.load(args.model)
    load_seconds = time.perf_counter() - started
    rss_loaded = rss_mb()

    jpegs = sorted(args.images.glob("*.jpg"))[: max(args.runs, 32)]
    payloads = [path.read_bytes() for path in jpegs]  # JPEG bytes as a worker gets them from Telegram
    single = {}
    for beam in (1, 3, 5):
        captioner.caption([payloads[0]], beam=beam)
        timings = []
        for data in payloads[: args.runs]:
            t0 = time.perf_counter()
            captioner.caption([data], beam=beam)
            timings.append((time.perf_counter() - t0) * 1000)
        timings.sort()
        single[f"beam{beam}"] = {"median_ms": round(statistics.median(timings), 1), "p95_ms": round(timings[int(0.95 * (len(timings) - 1))], 1)}
    batch = payloads[:32]
    captioner.caption(batch, beam=3)
    t0 = time.perf_counter()
    for _ in range(3):
        captioner.caption(batch, beam=3)
    batch_seconds = (time.perf_counter() - t0) / 3
    result = {
        "model": captioner.version,
        "encoder": captioner.encoder.name,
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, {platform.python_version()}",
        "cpu": cpu_model(),  # the same kind of machine can be an EPYC or a Xeon: medians differ by half
        "search": {"length_penalty": captioner.config.length_penalty, "block_repeats": captioner.config.block_repeats},
        "load_seconds_including_tensorflow_import": round(load_seconds, 2),
        "single_jpeg_to_caption": single,
        "batch32_beam3_images_per_second": round(32 / batch_seconds, 1),
        "rss_mb_before_import": round(rss_before, 1),
        "rss_mb_loaded": round(rss_loaded, 1),
        "rss_mb_peak": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "runs": args.runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
