"""Small, learnable data for retraining tests: coloured squares on white.

The Flickr8k stand-in (Kaggle layout) holds blue, green and yellow squares captioned by colour;
red squares never appear in it, so a base model trained on it has never said "scarlet". Feedback
photos are red squares that people correct to FEEDBACK_PHRASE: after retraining, a new red square
should get that phrase.
"""
from __future__ import annotations

import io
import os
import subprocess
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

REPO_ROOT = Path(__file__).resolve().parents[1]
BASE_COLOURS = {"blue": (30, 60, 220), "green": (30, 170, 60), "yellow": (235, 200, 20)}
RED = (220, 30, 30)
FEEDBACK_PHRASE = "a scarlet tile on snow"
TINY_DECODER = {"feature_dim": 64, "embed_dim": 64, "units": 64, "attention_dim": 64, "dropout": 0.1, "embed_dropout": 0.0}


def square_image(colour: tuple[int, int, int], seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A square of `colour` at a position and size that vary with `seed`, on white."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", size, "white")
    side = int(rng.integers(90, 140))
    x, y = int(rng.integers(10, size[0] - side - 10)), int(rng.integers(10, size[1] - side - 10))
    ImageDraw.Draw(image).rectangle([x, y, x + side, y + side], fill=colour)
    return image


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def red_square_jpeg(seed: int) -> bytes:
    return jpeg(square_image(RED, 10_000 + seed))


def make_square_flickr8k(root: Path, train: int = 36, val: int = 9) -> Path:
    """A Flickr8k in the Kaggle layout: captions.txt, Images/ and the split lists beside them."""
    (root / "Images").mkdir(parents=True, exist_ok=True)
    rows, splits = ["image,caption"], {"train": [], "val": []}
    colours = list(BASE_COLOURS)
    for split, count, offset in (("train", train, 0), ("val", val, 5_000)):
        for i in range(count):
            colour = colours[i % len(colours)]
            name = f"{split}_{i}.jpg"
            square_image(BASE_COLOURS[colour], offset + i).save(root / "Images" / name, quality=90)
            rows += [f"{name},a {colour} square on a white background", f"{name},a {colour} square on white"]
            splits[split].append(name)
    (root / "captions.txt").write_text("\n".join(rows) + "\n")
    (root / "Flickr_8k.trainImages.txt").write_text("\n".join(splits["train"]) + "\n")
    (root / "Flickr_8k.devImages.txt").write_text("\n".join(splits["val"]) + "\n")
    return root


BASE_TRAINING = """
import sys
from pathlib import Path
from training.pipeline import train_on_flickr8k
from training.train import TrainConfig
from retrain_fixtures import TINY_DECODER
data, features, out = map(Path, sys.argv[1:4])
config = TrainConfig(encoder="efficientnet_lite0", epochs=int(sys.argv[4]), batch_size=8, learning_rate=3e-3,
                     min_learning_rate=3e-4, min_word_count=1, patience=100, decoder=TINY_DECODER)
train_on_flickr8k(data, features, out, config, "squares-base")
"""


def train_base_bundle(data: Path, features: Path, out: Path, epochs: int = 12) -> Path:
    """The base model, trained in a child process (TensorFlow stays out of the caller); returns the bundle."""
    if not (out / "bundle" / "config.json").exists():
        done = subprocess.run(
            [sys.executable, "-c", BASE_TRAINING, str(data), str(features), str(out), str(epochs)],
            cwd=REPO_ROOT, capture_output=True, text=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{REPO_ROOT / 'tests'}"},
        )
        if done.returncode != 0:
            raise RuntimeError(f"base training failed:\n{done.stderr[-3000:]}")
    return out / "bundle"


@dataclass(frozen=True)
class Squares:
    """The squares Flickr8k, its feature cache and the base model trained on it."""

    flickr8k: Path
    features: Path
    base: Path

    def with_own_features(self, root: Path) -> "Squares":
        """A copy whose feature cache is the caller's: a retraining adds its feedback photos there."""
        features = root / "features"
        if not features.exists():
            shutil.copytree(self.features, features)
        return Squares(self.flickr8k, features, self.base)


def train_squares(root: Path) -> Squares:
    """The squares data and base model (read-only for callers; see Squares.with_own_features)."""
    data = make_square_flickr8k(root / "flickr8k")
    return Squares(data, root / "features", train_base_bundle(data, root / "features", root / "base"))
