"""From Flickr8k on disk to a model bundle: captions, vocabulary, feature cache, training."""
from __future__ import annotations

import logging
from pathlib import Path

from captioning.bundle import encoder_top_weights, load_decoder
from captioning.encoder_top import EncoderTopConfig, top_model
from captioning.encoders import bottom_encoder, build_encoder
from captioning.text import Vocabulary
from training.features import CroppedEncoder, MirroredEncoder, build_feature_cache, cache_dir_for
from training.flickr8k import load_flickr8k
from training.train import EncoderTop, ProgressCallback, TrainConfig, Trainer, TrainResult

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
    decoder, top_weights, parent_top = None, None, None
    info = {"data": "flickr8k", "splits": {"train": "Flickr_8k.trainImages.txt", "val": "Flickr_8k.devImages.txt"}, "val_images": len(val)}
    if init_from is not None:
        parent, vocab, decoder = load_decoder(init_from)
        if parent.encoder != config.encoder:
            raise ValueError(f"{init_from} was trained on {parent.encoder}, not {config.encoder}")
        info["parent"] = {"version": parent.version, "training": parent.training}
        top_weights, parent_top = encoder_top_weights(init_from, parent), parent.encoder_top
    else:
        vocab = Vocabulary.build((c for caps in train.values() for c in caps), config.min_word_count)
    log.info("vocabulary: %d words (min count %d)", len(vocab), config.min_word_count)
    encoder = build_encoder(config.encoder, top_weights=top_weights)
    top = None
    if config.finetune_encoder_from is not None:  # cache what enters the top; train the top with the decoder
        top_config = EncoderTopConfig(config.finetune_encoder_from)
        if parent_top is not None and parent_top != top_config:
            raise ValueError(f"{init_from} fine-tuned the encoder from block {parent_top.first_block}, not {top_config.first_block}")
        top = EncoderTop(top_config, top_model(encoder.backbone, top_config.first_block))
        encoder = bottom_encoder(encoder, top_config.first_block)
    elif parent_top is not None:  # the parent's fine-tuned top is kept as it is
        top = EncoderTop(parent_top, top_model(encoder.backbone, parent_top.first_block), trained=False)
    cache = build_feature_cache(encoder, {**train_paths, **val_paths}, cache_dir_for(features_root, encoder.weights_id))
    mirrored = None
    if config.mirror_augment:  # only train photos are ever seen mirrored
        view = MirroredEncoder(encoder)
        mirrored = build_feature_cache(view, train_paths, cache_dir_for(features_root, view.name))
    crops = []
    for number in range(1, config.crop_views + 1):  # only train photos are ever seen cropped
        view = CroppedEncoder(encoder, number)
        crops.append(build_feature_cache(view, train_paths, cache_dir_for(features_root, view.name)))
    trainer = Trainer(config, vocab, cache, decoder, mirrored, crops, top)
    return trainer.fit(train, val, out_dir, version, training_info=info, on_progress=on_progress)
