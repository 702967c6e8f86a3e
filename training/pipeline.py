"""From Flickr8k on disk to a model bundle: captions, vocabulary, feature cache, training, and
resuming such a run from its checkpoint."""
from __future__ import annotations

import logging
from pathlib import Path

from captioning.bundle import BundleConfig, encoder_top_weights, load_decoder, read_bundle_config
from captioning.decoder import AttentionDecoder, DecoderConfig
from captioning.encoder_top import EncoderTopConfig, top_model
from captioning.encoders import bottom_encoder, build_encoder
from captioning.text import Vocabulary
from training.checkpoint import Checkpoint, CheckpointError
from training.features import CroppedEncoder, MirroredEncoder, build_feature_cache, cache_dir_for
from training.flickr8k import load_flickr8k
from training.stages import ProgressCallback, TrainResult
from training.train import EncoderTop, TrainConfig, Trainer

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
    data = {"flickr8k": str(flickr8k_dir), "features": str(features_root), "train_limit": train_limit, "val_limit": val_limit,
            "init_from": str(init_from) if init_from is not None else None}
    train, train_paths = flickr8k_captions(flickr8k_dir, "train", train_limit)
    val, val_paths = flickr8k_captions(flickr8k_dir, "val", val_limit)
    decoder, parent = None, None
    info = {"data": "flickr8k", "splits": {"train": "Flickr_8k.trainImages.txt", "val": "Flickr_8k.devImages.txt"}, "val_images": len(val)}
    if init_from is not None:
        parent, vocab, decoder = load_decoder(init_from)
        if parent.encoder != config.encoder:
            raise ValueError(f"{init_from} was trained on {parent.encoder}, not {config.encoder}")
        info["parent"] = {"version": parent.version, "training": parent.training}
    else:
        vocab = Vocabulary.build((c for caps in train.values() for c in caps), config.min_word_count)
    log.info("vocabulary: %d words (min count %d)", len(vocab), config.min_word_count)
    trainer = _trainer(config, vocab, decoder, features_root, train_paths, val_paths, init_from, parent)
    return trainer.fit(train, val, out_dir, version, training_info=info, on_progress=on_progress, run_args=data)


def resume_on_flickr8k(
    run_dir: Path, checkpoint: Checkpoint, flickr8k: Path | None = None, features: Path | None = None, on_progress: ProgressCallback | None = None
) -> TrainResult:
    """Continue the run in `run_dir` from its checkpoint: its settings, vocabulary and models, on
    the data it was started with (`flickr8k` and `features` say where that lies now, if it moved)."""
    data = {**checkpoint.run["args"], **{k: str(v) for k, v in {"flickr8k": flickr8k, "features": features}.items() if v is not None}}
    try:
        config = TrainConfig.from_dict(checkpoint.config)
        decoder = AttentionDecoder(DecoderConfig.from_dict(checkpoint.run["models"]["decoder"]))
    except (TypeError, KeyError) as error:
        raise CheckpointError(f"{checkpoint.directory} does not describe a run this version can rebuild ({error})") from error
    decoder.build_all()  # its weights come from the checkpoint
    train, train_paths = flickr8k_captions(Path(data["flickr8k"]), "train", data["train_limit"])
    val, val_paths = flickr8k_captions(Path(data["flickr8k"]), "val", data["val_limit"])
    init_from = Path(data["init_from"]) if data.get("init_from") else None
    parent = read_bundle_config(init_from) if init_from is not None else None
    trainer = _trainer(config, checkpoint.vocab, decoder, Path(data["features"]), train_paths, val_paths, init_from, parent)
    return trainer.fit(train, val, run_dir, checkpoint.run["version"], training_info=checkpoint.run["training_info"],
                       on_progress=on_progress, run_args=data, resume=checkpoint)


def _trainer(config: TrainConfig, vocab: Vocabulary, decoder: AttentionDecoder | None, features_root: Path,
             train_paths: dict[str, Path], val_paths: dict[str, Path], init_from: Path | None,
             parent: BundleConfig | None) -> Trainer:
    """A Trainer over the feature caches of the photos and, as the config asks, their mirrored and
    cropped views; with `finetune_encoder_from`, the caches hold what enters the encoder's top and
    the top trains too. A parent bundle's (`init_from`, whose config the caller has read: `parent`)
    fine-tuned top is where that top starts, or, without fine-tuning, is carried into the new
    bundles unchanged."""
    top_weights = encoder_top_weights(init_from, parent) if parent is not None else None
    parent_top = parent.encoder_top if parent is not None else None
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
    return Trainer(config, vocab, cache, decoder, mirrored, crops, top)
