"""How big the per-epoch training checkpoint of the shipped model is, and how long writing and
reading it take (training/checkpoint.py; `captionbot train --resume`).

The decoder of the bundle (models/default unless --bundle) goes into a Trainer with the bundle's own
training config (the cross-entropy stage's optimizer: Adam moments and, with `ema_momentum`, moving
averages), on a few random feature grids; no training is needed, only the state a real epoch leaves.

Run: python benchmarks/checkpoint_write.py [--bundle models/default] [--repeats 5] [--dir /tmp]
Merges this CPU's result into benchmarks/results/checkpoint_write.json (one entry per CPU name).
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from captioning.bundle import load_decoder
from training.checkpoint import CHECKPOINT_DIR, Progress, read_checkpoint, write_checkpoint
from training.cpu import cpu_model
from training.features import FeatureCache
from training.train import TrainConfig, Trainer


def trainer_of(bundle: Path) -> Trainer:
    """A Trainer holding the bundle's decoder and a built cross-entropy optimizer, as after an epoch."""
    config, vocab, decoder = load_decoder(bundle)
    train_config = TrainConfig.from_dict(config.training["config"])
    grid = np.random.default_rng(0).random((4, config.decoder.grid_cells, config.decoder.feature_channels)).astype(np.float16)
    trainer = Trainer(train_config, vocab, FeatureCache([f"photo{i}" for i in range(4)], grid), decoder)
    trainer._make_optimizer(train_config.learning_rate, 1000)
    return trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bundle", type=Path, default=Path("models/default"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()), help="where the run directory is made (its disk is part of the time)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "checkpoint_write.json")
    args = parser.parse_args()

    trainer = trainer_of(args.bundle)
    history = [{"stage": "xe", "epoch": i, "loss": 2.0, "val_CIDEr": 0.5} for i in range(1, 11)]
    progress = Progress("xe", 10, False, False, (True, 0.5), {"CIDEr": 0.5}, 0, history)
    run = {"version": "benchmark", "training_info": {}, "models": trainer.model_configs(), "train_captions": 30000, "args": {}}
    run_dir = Path(tempfile.mkdtemp(dir=args.dir))
    writes, reads = [], []
    try:
        for _ in range(args.repeats):
            started = time.perf_counter()
            write_checkpoint(run_dir, progress, trainer.config.to_dict(), run, trainer.vocab,
                             trainer.checkpoint_variables(), trainer.checkpoint_optimizers())
            writes.append(time.perf_counter() - started)
            started = time.perf_counter()
            read_checkpoint(run_dir)
            reads.append(time.perf_counter() - started)
        files = {f.name: f.stat().st_size for f in sorted((run_dir / CHECKPOINT_DIR).iterdir())}
    finally:
        shutil.rmtree(run_dir)
    decoder_values = sum(int(np.prod(v.shape)) for v in trainer.checkpoint_variables().values())
    optimizer_values = sum(int(np.prod(v.shape)) for v in trainer.optimizer.variables)
    entry = {
        "bundle": json.loads((args.bundle / "config.json").read_text())["version"],
        "decoder_values": decoder_values,
        "optimizer_values": optimizer_values,
        "ema": trainer.averaging,
        "checkpoint_bytes": sum(files.values()),
        "files": files,
        "write_seconds": {"median": round(float(np.median(writes)), 3), "min": round(min(writes), 3), "max": round(max(writes), 3)},
        "read_seconds": {"median": round(float(np.median(reads)), 3)},
        "repeats": args.repeats,
        "filesystem_dir": str(args.dir),
        "tensorflow": tf.__version__,
    }
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    results[cpu_model()] = entry
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({cpu_model(): entry}, indent=2))


if __name__ == "__main__":
    main()
