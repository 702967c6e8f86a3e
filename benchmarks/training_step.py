"""One cross-entropy training step of the real decoder in float32 and in bfloat16, on this CPU.

Whether `captionbot train --bfloat16` pays off depends on the CPU, and its flags do not say:
bfloat16 was faster on an AVX-512 AMD EPYC, slower on an Intel Xeon that also lists AVX512-BF16
(no AMX), and emulated (slower) on an AVX2-only EPYC. Run this before a long training run.

Run: python benchmarks/training_step.py [--batch 64] [--tokens 16] [--steps 8]
Merges this CPU's result into benchmarks/results/training_step.json (one entry per CPU name and flags).
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from captioning.decoder import AttentionDecoder, DecoderConfig
from training.train import cpu_has_bfloat16

PRECISIONS = {"float32": "float32", "bfloat16": "mixed_bfloat16"}


def cpu_model() -> str:
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def cpu_flags() -> list[str]:
    """The flags that decide how bfloat16 and float32 run (AVX-512, AVX512-BF16, AMX)."""
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("flags"):
                flags = line.split(":", 1)[1].split()
                return sorted(f for f in flags if f in {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"})
    return []


def seconds_per_step(policy: str, batch: int, tokens: int, steps: int) -> float:
    """Median over `steps` of a train step as training/train.py runs it (label smoothing, attention
    penalty, Adam with clipping), after two warm-up steps (the first traces)."""
    decoder = AttentionDecoder(DecoderConfig(2532, 1280, 81), policy)  # the shipped model's sizes
    decoder.build_all()
    optimizer = keras.optimizers.Adam(1e-4, clipnorm=5.0)
    optimizer.build(decoder.trainable_variables)

    @tf.function
    def step(grid, token_ids, weights):
        with tf.GradientTape() as tape:
            loss, nll, penalty = decoder.sequence_loss(grid, token_ids, weights, training=True, label_smoothing=0.1)
            total = loss + penalty
        variables = decoder.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(total, variables), variables))
        return nll

    rng = np.random.default_rng(0)
    grid = tf.constant(rng.random((batch, 81, 1280), np.float32))
    token_ids = tf.constant(rng.integers(4, 2532, (batch, tokens), dtype=np.int32))
    weights = tf.ones((batch,))
    for _ in range(2):
        float(step(grid, token_ids, weights))
    timings = []
    for _ in range(steps):
        started = time.perf_counter()
        float(step(grid, token_ids, weights))
        timings.append(time.perf_counter() - started)
    return float(np.median(timings))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=16, help="caption length in tokens, <start> included")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "training_step.json")
    args = parser.parse_args()

    seconds = {name: seconds_per_step(policy, args.batch, args.tokens, args.steps) for name, policy in PRECISIONS.items()}
    entry = {
        "cpu_flags": cpu_flags(),
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
