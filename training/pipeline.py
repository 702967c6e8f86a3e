"""From Flickr8k on disk to a model bundle: captions, vocabulary, feature cache, training."""
from __future__ import annotations

import logging
from pathlib import Path

from captioning.bundle import load_decoder
from captioning.encoders import build_encoder
from captioning.text import Vocabulary
from training.features import CroppedEncoder, MirroredEncoder, build_feature_cache, cache_dir_for
from training.flickr8k import load_flickr8k
from training.train import ProgressCallback, TrainConfig, Trainer, TrainResult

log = logging.getLogger(__name__)


def flickr8k_captions(root: Path, split: str, limit: int | None = None) -> tuple[dict[str, list[str]], dict[str, Path]]:
    images = load_flickr8k(root, split, limit)
    return {i.name: list(i.captions) for i in images}, {i.name: i.path for i in images}


def train_on_flickr8k(
    flickr8k_dir: Path,
    features_root: Path,
    out_dir: Path,
    config: TrainConfig,
    version: str,
    train_limit: int | None = None,
    val_limit: int | None = None,
    on_progress: ProgressCallback | None = None,
    init_from: Path | None = None,
) -> TrainResult:
    """Train split for training, val split for early stopping; the test split is never read.

    With `init_from` (a bundle), training continues from its weights and vocabulary, e.g. more
    self-critical epochs after a finished run.
    """
    train, train_paths = flickr8k_captions(flickr8k_dir, "train", train_limit)
    val, val_paths = flickr8k_captions(flickr8k_dir, "val", val_limit)
    decoder = None
    info = {"data": "flickr8k", "splits": {"train": "Flickr_8k.trainImages.txt", "val": "Flickr_8k.devImages.txt"}, "val_images": len(val)}
    if init_from is not None:
        parent, vocab, decoder = load_decoder(init_from)
        if parent.encoder != config.encoder:
            raise ValueError(f"{init_from} was trained on {parent.encoder}, not {config.encoder}")
        info["parent"] = {"version": parent.version, "training": parent.training}
    else:
        vocab = Vocabulary.build((c for caps in train.values() for c in caps), config.min_word_count)
    log.info("vocabulary: %d words (min count %d)", len(vocab), config.min_word_count)
    encoder = build_encoder(config.encoder)
    cache = build_feature_cache(encoder, {**train_paths, **val_paths}, cache_dir_for(features_root, config.encoder))
    mirrored = None
    if config.mirror_augment:  # only train photos are ever seen mirrored
        mirrored = build_feature_cache(MirroredEncoder(encoder), train_paths, cache_dir_for(features_root, f"{config.encoder}-mirrored"))
    crops = [  # only train photos are ever seen cropped
        build_feature_cache(CroppedEncoder(encoder, view), train_paths, cache_dir_for(features_root, f"{config.encoder}-crop{view}"))
        for view in range(1, config.crop_views + 1)
    ]
    trainer = Trainer(config, vocab, cache, decoder, mirrored, crops)
    return trainer.fit(train, val, out_dir, version, training_info=info, on_progress=on_progress)
