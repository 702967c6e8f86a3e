"""One cross-entropy training step of the real decoder in float32 and in bfloat16, on this CPU.

Whether `captionbot train --bfloat16` pays off depends on the CPU, and its flags do not say:
bfloat16 was faster on an AVX-512 AMD EPYC and a little faster on an Intel Xeon with AMX, slower
on an Intel Xeon that lists AVX512-BF16 but no AMX, and emulated (slower) on an AVX2-only EPYC.
Run this before a long training run.

Run: python benchmarks/training_step.py [--batch 64] [--tokens 16] [--steps 8]
Merges this CPU's result into benchmarks/results/training_step.json (one entry per CPU name and flags).
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from captioning.text import Vocabulary
from training.cpu import cpu_flags, cpu_has_bfloat16, cpu_model
from training.features import FeatureCache
from training.train import TrainConfig, Trainer

# the shipped model's sizes: 2,532 words, a 9×9×1280 EfficientNet-Lite2 grid
VOCAB_WORDS, GRID_CELLS, CHANNELS = 2532, 81, 1280
SPEED_FLAGS = {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}  # what decides bfloat16 against float32


def seconds_per_step(bfloat16: bool, batch: int, tokens: int, steps: int) -> float:
    """Median over `steps` of the Trainer's own cross-entropy step (label smoothing, attention
    penalty, Adam with clipping, features gathered in-graph) on random features and captions, after
    two warm-up steps (the first traces)."""
    rng = np.random.default_rng(0)
    vocab = Vocabulary(f"w{i}" for i in range(VOCAB_WORDS - 4))  # + the four special tokens
    cache = FeatureCache([f"photo{i}" for i in range(batch)], rng.random((batch, GRID_CELLS, CHANNELS)).astype(np.float16))
    trainer = Trainer(TrainConfig(bfloat16=bfloat16, label_smoothing=0.1), vocab, cache)
    trainer._make_optimizer(trainer.config.learning_rate, 1000)
    rows = tf.range(batch)
    token_ids = tf.constant(rng.integers(4, len(vocab), (batch, tokens), dtype=np.int32))
    weights = tf.ones((batch,))

    def step() -> None:
        nll, _ = trainer._train_step(rows, token_ids, weights)
        float(nll)  # wait for the step to finish

    step()
    step()
    timings = []
    for _ in range(steps):
        started = time.perf_counter()
        step()
        timings.append(time.perf_counter() - started)
    return float(np.median(timings))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=16, help="caption length in tokens, <start> included")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "training_step.json")
    args = parser.parse_args()

    seconds = {name: seconds_per_step(name == "bfloat16", args.batch, args.tokens, args.steps) for name in ("float32", "bfloat16")}
    entry = {
        "cpu_flags": sorted(cpu_flags() & SPEED_FLAGS),
        "cores": os.cpu_count(),
        "tensorflow": tf.__version__,
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
        "batch": args.batch,
        "tokens": args.tokens,
        "seconds_per_step": {name: round(s, 3) for name, s in seconds.items()},
        "bfloat16_speedup": round(seconds["float32"] / seconds["bfloat16"], 2),
        "captionbot_warns_on_bfloat16": not cpu_has_bfloat16(),
    }
    cpu = f"{cpu_model()} ({' '.join(entry['cpu_flags'])})"  # one CPU name can cover different chips
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    results[cpu] = entry
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps({cpu: entry}, indent=1))


if __name__ == "__main__":
    main()
