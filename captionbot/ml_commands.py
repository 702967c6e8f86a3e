"""ML subcommands: train, evaluate, caption. TensorFlow is imported only when one of them runs,
so the service commands stay light."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from captionbot.settings import get_settings


def register(commands: argparse._SubParsersAction) -> None:
    settings = get_settings()

    train = commands.add_parser("train", help="train a captioner on Flickr8k (train split; val for selection)")
    train.add_argument("--flickr8k", type=Path, default=settings.flickr8k_dir)
    train.add_argument("--features", type=Path, default=settings.data_dir / "features", help="feature cache root")
    train.add_argument("--out", type=Path, required=True, help="run directory; the bundle goes to OUT/bundle")
    train.add_argument("--version", required=True, help="model version name written into the bundle")
    train.add_argument("--encoder", default="efficientnet_lite2", choices=["efficientnet_lite0", "efficientnet_lite2", "resnet50"])
    train.add_argument("--epochs", type=int, default=12)
    train.add_argument("--scst-epochs", type=int, default=0, help="self-critical CIDEr-D fine-tuning epochs after cross-entropy")
    train.add_argument("--batch-size", type=int, default=64)
    train.add_argument("--learning-rate", type=float, default=5e-4)
    train.add_argument("--patience", type=int, default=3)
    train.add_argument("--train-limit", type=int, help="use only the first N train images (smoke runs)")
    train.add_argument("--val-limit", type=int, help="use only the first N val images")
    train.add_argument("--decoder", type=json.loads, default={}, help='DecoderConfig overrides as JSON, e.g. \'{"units": 256}\'')
    train.set_defaults(handler=run_train)


def run_train(args: argparse.Namespace) -> int:
    from training.pipeline import train_on_flickr8k
    from training.plots import plot_training_curves
    from training.train import TrainConfig

    config = TrainConfig(
        encoder=args.encoder,
        epochs=args.epochs,
        scst_epochs=args.scst_epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        patience=args.patience,
        decoder=args.decoder,
    )
    result = train_on_flickr8k(args.flickr8k, args.features, args.out, config, args.version, args.train_limit, args.val_limit)
    plot_training_curves(result.history, args.out / "training_curves.png")
    print(json.dumps({"bundle": str(result.bundle_dir), "best_val_greedy": result.best_scores}, indent=2))
    return 0 if result.bundle_dir.exists() else 1
