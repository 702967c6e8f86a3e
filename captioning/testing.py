"""A tiny untrained bundle for tests that need any model: the plumbing is real, the captions are not."""
from __future__ import annotations

from pathlib import Path

from captioning.bundle import BundleConfig, save_bundle
from captioning.decoder import AttentionDecoder, DecoderConfig
from captioning.encoders import SPECS
from captioning.text import Vocabulary

TINY_WORDS = "a dog cat man woman runs sits on the grass water red ball in with".split()


def write_random_bundle(path: Path, encoder: str = "efficientnet_lite0", version: str = "random-test") -> Path:
    spec = SPECS[encoder]
    cells = 49 if spec.input_size == 224 else 81
    vocab = Vocabulary(TINY_WORDS)
    config = DecoderConfig(len(vocab), spec.channels, cells, feature_dim=32, embed_dim=32, units=32, attention_dim=32, max_words=12)
    decoder = AttentionDecoder(config)
    decoder.build_all()
    return save_bundle(Path(path), BundleConfig(version, encoder, config), vocab, decoder)
