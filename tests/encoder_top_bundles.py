"""A bundle whose encoder top differs from ImageNet's, for tests of the fine-tuned encoder's path."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from captioning.bundle import load_decoder, save_bundle
from captioning.encoder_top import EncoderTopConfig, last_block, top_model
from captioning.encoders import ImageEncoder, build_encoder
from captioning.testing import write_random_bundle


def write_fine_tuned_bundle(path: Path, encoder_name: str = "efficientnet_lite0") -> tuple[Path, ImageEncoder]:
    """The bundle (its last block and head scaled by random factors) and the encoder it was made with."""
    bundle = write_random_bundle(path, encoder_name)
    encoder = build_encoder(encoder_name)
    first_block = last_block(encoder.backbone)
    top = top_model(encoder.backbone, first_block)
    rng = np.random.default_rng(2)
    for variable in top.trainable_variables:
        value = variable.numpy()
        variable.assign(value * (1 + 0.3 * rng.normal(size=value.shape)).astype(np.float32))
    config, vocab, decoder = load_decoder(bundle)
    config.encoder_top = EncoderTopConfig(first_block)
    save_bundle(bundle, config, vocab, decoder, top)
    return bundle, encoder
