"""A Trainer over six random 4-cell feature grids and a ten-word vocabulary: fast training-step tests."""
import numpy as np

from captioning.text import Vocabulary
from training.features import FeatureCache
from training.train import TrainConfig, Trainer

WORDS = "a dog runs on the grass red ball man sits".split()
# four train photos and two val photos (img4, img5) with the captions of img0 and img1
TRAIN = {f"img{i}": ["a dog runs on the grass", "a dog on grass"] if i % 2 else ["a man sits", "a red ball"] for i in range(4)}
VAL = {f"img{i}": TRAIN[f"img{i - 4}"] for i in (4, 5)}
TINY = {"feature_dim": 16, "embed_dim": 16, "units": 16, "attention_dim": 16, "max_words": 8}


def tiny_trainer(mirror: bool = False, crops: int = 0, **config) -> Trainer:
    """`mirror` adds a mirrored-features cache (the photos' features negated) and `crops` that many
    cropped-view caches (the features scaled) for augmentation."""
    rng = np.random.default_rng(0)
    cache = FeatureCache([f"img{i}" for i in range(6)], rng.normal(size=(6, 4, 8)).astype(np.float16))
    mirrored = FeatureCache(cache.names, -cache.grid) if mirror else None
    cropped = [FeatureCache(cache.names, cache.grid * (k + 2)) for k in range(crops)]
    return Trainer(TrainConfig(**{"decoder": TINY, "batch_size": 4, **config}), Vocabulary(WORDS), cache, mirrored=mirrored, crops=cropped)
