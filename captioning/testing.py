"""A tiny untrained bundle for tests that need any model: the plumbing is real, the captions are not."""
from __future__ import annotations

from pathlib import Path

import keras

from captioning.bundle import BundleConfig, save_bundle
from captioning.decoder import AttentionDecoder, DecoderConfig
from captioning.encoders import SPECS
from captioning.text import Vocabulary

TINY_WORDS = "a dog cat man woman runs sits on the grass water red ball in with".split()


def write_random_bundle(path: Path, encoder: str = "efficientnet_lite0", version: str = "random-test", seed: int = 0) -> Path:
    """The same weights for the same seed, so a test that needs the model to behave some way (a
    peaked distribution, photos told apart) does so in every run."""
    keras.utils.set_random_seed(seed)
    spec = SPECS[encoder]
    cells = 49 if spec.input_size == 224 else 81
    vocab = Vocabulary(TINY_WORDS)
    config = DecoderConfig(len(vocab), spec.channels, cells, feature_dim=32, embed_dim=32, units=32, attention_dim=32, max_words=12)
    decoder = AttentionDecoder(config)
    decoder.build_all()
    return save_bundle(Path(path), BundleConfig(version, encoder, config), vocab, decoder)
