"""How many photos to give the encoder at once: ms per photo at batch sizes 1 to 32, TensorFlow
against ONNX Runtime (as caption workers run it), interleaved in one process.

A caption worker captions up to CAPTION_BATCH photos in one pass; beam search gains from the whole
batch, but a CPU encoder need not (its convolutions already use every core at batch 1, and a large
batch's activations fall out of the caches). This measures where that turns, for the shipped
model's encoder, so ExportedEncoder can feed ONNX Runtime chunks of the best size.

Run: python benchmarks/encoder_batch_sizes.py [--model models/default] [--rounds 15]
Writes benchmarks/results/encoder_batch_sizes.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from captioning.bundle import read_bundle_config  # noqa: E402
from captioning.encoder_files import cached_onnx  # noqa: E402
from captioning.encoders import build_encoder  # noqa: E402
from captioning.onnx_sessions import onnxruntime_grid  # noqa: E402
from training.cpu import machine_facts  # noqa: E402

BATCH_SIZES = (1, 2, 4, 8, 16, 32)
PHOTOS = 32  # each timing encodes this many photos, in batches of the size measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=REPO_ROOT / "models" / "default")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "encoder_batch_sizes.json")
    args = parser.parse_args()

    encoder = build_encoder(read_bundle_config(args.model).encoder)
    with tempfile.TemporaryDirectory(prefix="encoder-batch-sizes-") as folder:
        onnx_grid = onnxruntime_grid(cached_onnx(encoder, Path(folder)), args.threads)
    runtimes = {"tensorflow": lambda pixels: encoder.encode(pixels)[0], "onnxruntime": onnx_grid}
    size = encoder.input_size
    pixels = np.random.default_rng(0).integers(0, 256, (PHOTOS, size, size, 3), dtype=np.uint8)
    for batch in BATCH_SIZES:  # warm-up: TensorFlow traces each new batch shape once
        for run in runtimes.values():
            run(pixels[:batch])
    timings: dict[str, dict[int, list[float]]] = {name: {batch: [] for batch in BATCH_SIZES} for name in runtimes}
    load_before = os.getloadavg()[0]
    for _ in range(args.rounds):
        for batch in BATCH_SIZES:
            for name, run in runtimes.items():
                started = time.perf_counter()
                for start in range(0, PHOTOS, batch):
                    run(pixels[start : start + batch])
                timings[name][batch].append((time.perf_counter() - started) * 1000 / PHOTOS)
    result = {
        "command": "python benchmarks/encoder_batch_sizes.py " + " ".join(sys.argv[1:]),
        "encoder": encoder.name,
        "input_size": size,
        "threads": args.threads,
        "rounds": args.rounds,
        "ms_per_photo_median": {name: {str(b): round(statistics.median(v), 1) for b, v in by_batch.items()}
                                for name, by_batch in timings.items()},
        "ms_per_photo_p90": {name: {str(b): round(float(np.percentile(v, 90)), 1) for b, v in by_batch.items()}
                             for name, by_batch in timings.items()},
        "machine": machine_facts(load_before),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["ms_per_photo_median"], indent=2))


if __name__ == "__main__":
    main()
