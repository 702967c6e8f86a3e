"""`RetrainRun`: a new decoder from the active model, Flickr8k train and what users told the bot.

The caller (worker/retrain_version.py, for /retrain and `captionbot retrain`) registers the run as
a model version, passes the feedback and where to read from, and records or promotes the result;
this module needs no settings, registry or Redis. The steps:

1. data: Flickr8k train, corrections and 👍 captions (screened: training/feedback_screen.py; a
   tenth of the corrected photos held back);
2. features: Flickr8k's from the cache; feedback photos encoded into a cache of the run's own,
   deleted once its rows are in memory, so nothing derived from a photo outlives the run
   (a photo forgotten with /forget leaves no features behind);
3. vocabulary grown by the corrections' new words; the active decoder grown to match (or a new
   decoder trained from scratch);
4. a short cross-entropy warm-up on the feedback beside a replayed sample of Flickr8k train that
   trains only the new words' rows and their image terms (an output term that reads the whole
   image, so a new kind of photo is told apart by the image itself: AttentionDecoder.image_words)
   (or, with warmup="own-captions", the whole decoder on Flickr8k
   photos captioned by the active model), so new words enter what the model samples; then
   self-critical training on Flickr8k train plus the feedback, which keeps the self-critical gain
   of the shipped recipe that cross-entropy epochs on human captions undo (training/self_critical.py);
5. both models scored on Flickr8k val and the held-back photos, same search (the active model
   before training, so that epoch selection prefers epochs that pass the promotion rule), and the
   promotion decision: promote only if val BLEU-4 and CIDEr are not worse than the active model's
   by more than the tolerance.
"""
from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from captioning.captioner import Captioner
from captioning.bundle import WEIGHTS_FILE, BundleError, load_decoder, save_decoder_weights
from captioning.encoder_top import top_model
from captioning.metrics import score_captions
from captioning.specificity import SPECIFICITY_KEYS, caption_specificity
from captioning.text import Vocabulary
from training.evaluate import caption_split
from training.feedback_data import FeedbackData, build_feedback_data, combined_cache
from training.feedback_screen import FeedbackRules, screen_feedback
from training.features import FeatureCache, build_feature_cache, cache_dir_for
from training.finetune import grow_decoder
from training.new_word_bias import choose_offset
from training.pipeline import flickr8k_captions
from training.plots import plot_training_curves
from training.promotion import GATED_METRICS, decide_promotion
from training.self_critical import with_feedback
from training.stages import ProgressCallback, SelectionGate
from training.train import EncoderTop, TrainConfig, Trainer

log = logging.getLogger(__name__)
FEATURE_CHUNK = 64
FEEDBACK_FEATURES = "feedback-features"  # in the run's folder, while the run encodes its feedback photos


class RetrainError(RuntimeError):
    """A run that cannot go on, with a reason fit to show the admin who asked for it."""


@dataclass
class RetrainOptions:
    epochs: int = 4  # warm-up epochs (from scratch: cross-entropy epochs of the whole decoder)
    learning_rate: float = 3e-3
    scst_epochs: int = 1
    scst_learning_rate: float = 2e-5
    scst_flickr8k_images: int | None = 1000  # Flickr8k train photos per self-critical epoch, drawn anew each epoch (None: all)
    feedback_repeats: int = 2  # each feedback example is drawn this often per epoch (both stages)
    replay_images: int = 3000  # Flickr8k train photos beside the feedback in the warm-up
    warmup: str = "new-words"  # or "own-captions": what the warm-up trains (see execute)
    batch_size: int = 64
    patience: int = 2
    from_scratch: bool = False
    correction_weight: float = 1.0
    upvote_weight: float = 0.5
    holdout_fraction: float = 0.1
    new_word_min_count: int = 2
    max_corrections_per_user: int = 50
    max_correction_words: int = 30
    max_unknown_word_share: float = 0.5
    train_limit: int | None = None
    val_limit: int | None = None
    tolerance_bleu4: float = 0.005
    tolerance_cider: float = 0.02
    beam: int = 3
    # offsets tried on the new words' output biases after training (training/new_word_bias.py)
    new_word_bias_offsets: tuple[float, ...] = (0.0, -0.5, -1.0, -1.5, -2.0)
    image_words: bool = True  # the new words' output units also read the whole image (AttentionDecoder.image_words)



@dataclass(frozen=True)
class RetrainInputs:
    """Where a run reads from: the caller resolves these from its settings."""

    flickr8k_dir: Path
    features_dir: Path  # Flickr8k feature caches, one folder per encoder (feedback photos are never cached here)
    resnet50_weights: str | None = None
    max_image_pixels: int = 40_000_000


class RetrainRun:
    """The steps of one run that need the model; holds what they share."""

    def __init__(self, inputs: RetrainInputs, options: RetrainOptions, emit: ProgressCallback, version: str,
                 run_dir: Path, parent: str, parent_path: Path, requested_by: int | None) -> None:
        self.inputs, self.options, self.emit = inputs, options, emit
        self.version, self.run_dir, self.parent, self.parent_path = version, run_dir, parent, parent_path
        self.requested_by = requested_by
        self.seconds: dict[str, float] = {}

    def stage(self, name: str, message: str) -> None:
        self.seconds[name] = time.monotonic()
        self.emit({"event": "stage", "stage": name, "message": message})

    def execute(self, examples: list) -> dict[str, Any]:
        started = time.monotonic()
        self.stage("loading", f"Loading the active model {self.parent}…")
        try:
            active = Captioner.load(self.parent_path, self.inputs.resnet50_weights, self.inputs.max_image_pixels)
        except (BundleError, OSError) as error:
            raise RetrainError(f"the active model {self.parent} does not load: {error}") from error
        o = self.options
        try:
            train, train_paths = flickr8k_captions(self.inputs.flickr8k_dir, "train", o.train_limit)
            val, val_paths = flickr8k_captions(self.inputs.flickr8k_dir, "val", o.val_limit)
        except FileNotFoundError as error:
            raise RetrainError(f"Flickr8k is not where FLICKR8K_DIR says ({error})") from error
        rules = FeedbackRules(active.vocab, o.max_correction_words, o.max_unknown_word_share, o.max_corrections_per_user)
        examples, excluded = screen_feedback(examples, rules)
        feedback = build_feedback_data(examples, o.correction_weight, o.upvote_weight, o.holdout_fraction)
        feedback.counts["excluded"] = excluded  # reaches the report's data_counts

        self.stage("features", "Encoding photos…")
        flickr_cache = self.flickr8k_features(active, {**train_paths, **val_paths})
        feedback_dir = self.run_dir / FEEDBACK_FEATURES
        try:
            feedback_cache = self.feedback_features(active, feedback.photos, feedback_dir)
            cache = combined_cache(flickr_cache, sorted(train) + sorted(val), feedback_cache, feedback.photo_of)
        finally:
            del flickr_cache
            feedback_cache = None
            shutil.rmtree(feedback_dir, ignore_errors=True)

        vocab, decoder, new_words = self.starting_point(active, train, feedback)
        # Cross-entropy on Flickr8k's human captions pulls a self-critically trained decoder back
        # towards them and undoes that stage's gain, so a fine-tuning warm-up replays Flickr8k photos
        # with the active model's own captions ("own-captions"), or trains only the new words'
        # rows ("new-words"); from scratch, cross-entropy trains everything on the human captions.
        replay = len(train) if o.from_scratch else o.replay_images
        replay_names = replay_sample(train, replay)
        own_captions = None
        if not o.from_scratch and o.warmup == "own-captions" and feedback.train:
            self.stage("replay", f"Captioning {len(replay_names)} Flickr8k photos with {self.parent} for the warm-up…")
            grid = np.asarray(cache.grid[cache.rows(replay_names)], np.float32)
            own_captions = caption_split(active, grid, replay_names, o.beam)
        warmup_epochs = o.epochs if o.from_scratch or own_captions or (o.warmup == "new-words" and new_words) else 0
        only_words = [vocab.index[w] for w in new_words] if not o.from_scratch and o.warmup == "new-words" else None
        config = TrainConfig(
            encoder=active.encoder.name, epochs=warmup_epochs, xe_only_words=only_words, batch_size=o.batch_size, learning_rate=o.learning_rate,
            min_learning_rate=o.learning_rate / 10, patience=o.patience, length_penalty=active.config.length_penalty,
            block_repeats=active.config.block_repeats, select_beam=o.beam, scst_epochs=o.scst_epochs,
            scst_learning_rate=o.scst_learning_rate, decoder=_decoder_sizes(active),
        )
        warmup, warmup_weights = warmup_data(train, replay_names, feedback, o.feedback_repeats, own_captions)
        counts = {
            "flickr8k_train_images": len(train), "flickr8k_train_captions": sum(len(c) for c in train.values()),
            "flickr8k_val_images": len(val), **feedback.counts, "new_words": new_words, "vocab_size": len(vocab),
            "parent_vocab_size": len(active.vocab), "warmup_flickr8k_images": len(warmup) - len(feedback.train),
            "feedback_repeats": o.feedback_repeats,
        }
        self.stage("baseline", f"Scoring {self.parent} (beam {o.beam})…")
        active_metrics = self.score(active, cache, val, feedback)
        tolerance = {"BLEU-4": o.tolerance_bleu4, "CIDEr": o.tolerance_cider}
        self.stage("training", f"Training on {len(train)} Flickr8k + {len(feedback.photos)} feedback photos…")
        info = {"data": "flickr8k+feedback", "parent_version": self.parent, "requested_by": self.requested_by,
                "mode": "from scratch" if o.from_scratch else "fine-tuned", "data_counts": counts}
        trainer = Trainer(config, vocab, cache, decoder, encoder_top=carried_top(active))
        # Epochs are selected on val plus the held-back photos (on Flickr8k val alone, the epoch
        # chosen could be one from before the feedback was learned), by the search that promotion
        # compares with: greedy and beam 3 rank epochs differently (docs/experiments.md).
        selection = {**val, **feedback.heldout}
        gate = promotion_gate(val, active_metrics["val"], tolerance)
        result = trainer.fit(warmup, selection, self.run_dir / "training", self.version,
                             weights=warmup_weights, training_info=info, on_progress=self.emit,
                             self_critical=with_feedback(train, feedback, o.feedback_repeats, None if o.from_scratch else o.scst_flickr8k_images),
                             gate=gate, checkpoints=False)  # a retraining is run again, not resumed: no optimizer state kept
        del trainer
        bundle_dir = self.run_dir / "bundle"
        if not result.bundle_dir.exists():
            raise RetrainError("training ended without a model (no epoch finished)")
        shutil.rmtree(bundle_dir, ignore_errors=True)
        result.bundle_dir.replace(bundle_dir)  # the version's path only ever holds a finished bundle
        curves = plot_training_curves(result.history, self.run_dir / "training_curves.png")

        try:
            config_new, vocab_new, decoder_new = load_decoder(bundle_dir)
        except BundleError as error:
            raise RetrainError(f"the new bundle does not load: {error}") from error
        candidate = Captioner(config_new, vocab_new, decoder_new, active.encoder, active.max_pixels)
        new_word_bias = None
        if only_words and tuple(o.new_word_bias_offsets) not in ((), (0.0,)):  # [0] or [] turns it off
            self.stage("calibrating", f"Choosing how readily {self.version} says its new words…")
            names = sorted(selection)
            grid = np.asarray(cache.grid[cache.rows(names)], np.float32)
            offset, trials = choose_offset(candidate, [vocab_new.index[w] for w in new_words], o.new_word_bias_offsets,
                                           lambda captioner: caption_split(captioner, grid, names, o.beam), selection, gate)
            save_decoder_weights(decoder_new, bundle_dir / WEIGHTS_FILE)
            new_word_bias = {"offset": offset, "trials": [t.to_dict() for t in trials]}
            log.info("new words' bias offset %g (of %s)", offset, ", ".join(f"{t:g}" for t in o.new_word_bias_offsets))
        self.stage("evaluating", f"Scoring {self.version} (beam {o.beam})…")
        metrics = self.score(candidate, cache, val, feedback)
        decision = decide_promotion(metrics["val"], active_metrics["val"], tolerance)
        self.stage("done", "Recording the new version…")
        starts = list(self.seconds.items())
        self.seconds = {name: round(end - at, 1) for (name, at), (_, end) in zip(starts, starts[1:])}
        self.seconds["total"] = round(time.monotonic() - started, 1)
        return {
            "version": self.version, "parent_version": self.parent, "requested_by": self.requested_by,
            "promoted": decision.promote, "reasons": decision.reasons, "decision": decision.summary(),
            "status": "active" if decision.promote else "candidate",
            "metrics": metrics, "active_metrics": active_metrics, "tolerance": tolerance,
            "search": f"beam {o.beam}", "mode": info["mode"], "data_counts": counts,
            "history": result.history, "new_word_bias": new_word_bias, "bundle": str(bundle_dir), "active_bundle": str(self.parent_path), "curves_png": str(curves), "seconds": self.seconds,
        }

    def flickr8k_features(self, active: Captioner, paths: dict[str, Path]) -> FeatureCache:
        """Encoded once per encoder and reused by every run (the default model's training filled it)."""
        self.emit({"event": "features", "source": "Flickr8k", "done": 0, "total": len(paths)})
        cache = build_feature_cache(active.encoder, paths, cache_dir_for(self.inputs.features_dir, active.encoder.weights_id))
        self.emit({"event": "features", "source": "Flickr8k", "done": len(paths), "total": len(paths)})
        return cache

    def feedback_features(self, active: Captioner, photos: dict[str, Path], cache_dir: Path) -> FeatureCache | None:
        """Feedback photos encoded into `cache_dir`, chunk by chunk (progress x/y).

        The cache is the run's own and the caller deletes it once its rows are in memory: kept
        between runs, it would hold the features of photos whose owners have since used /forget.
        Encoding them again each run is cheap: the whole features stage of retrain_time.py's run 7
        (1,300 feedback photos, none cached) took 36.9 s on the Intel Xeon.
        """
        forget_shared_feedback_cache(self.inputs.features_dir)
        if not photos:
            return None
        shutil.rmtree(cache_dir, ignore_errors=True)  # left by a run that was killed
        names = sorted(photos)
        cache = None
        for start in range(0, len(names), FEATURE_CHUNK):
            wanted = names[: start + FEATURE_CHUNK]
            cache = build_feature_cache(active.encoder, {n: photos[n] for n in wanted}, cache_dir, progress=False)
            self.emit({"event": "features", "source": "feedback", "done": len(wanted), "total": len(names)})
        return cache

    def starting_point(self, active: Captioner, train: dict[str, list[str]], feedback: FeedbackData):
        """(vocabulary, decoder or None, new words): the active decoder grown, or nothing (from scratch)."""
        o = self.options
        if o.from_scratch:
            base = Vocabulary.build((c for caps in train.values() for c in caps), TrainConfig.min_word_count)
            new_words = feedback.new_words(base, o.new_word_min_count)
            return base.extend(new_words), None, new_words
        new_words = feedback.new_words(active.vocab, o.new_word_min_count)
        vocab = active.vocab.extend(new_words)
        image_words = [vocab.index[w] for w in new_words] if o.image_words and o.warmup == "new-words" else []
        return vocab, grow_decoder(active.decoder, len(vocab), image_words=image_words), new_words

    def score(self, captioner: Captioner, cache: FeatureCache, val: dict[str, list[str]], feedback: FeedbackData) -> dict:
        """COCO-toolkit scores, and how specific the captions are, of one model on val and on the
        held-back corrected photos."""
        scores: dict[str, Any] = {}
        for split, references in (("val", val), ("feedback_heldout", feedback.heldout)):
            if not references:
                scores[split] = None
                continue
            names = sorted(references)
            grid = np.asarray(cache.grid[cache.rows(names)], np.float32)
            captions = caption_split(captioner, grid, names, self.options.beam)
            result = {**score_captions(references, captions), **caption_specificity(captions, references).to_dict()}
            kept = ("images", "tokenizer", *SPECIFICITY_KEYS)
            scores[split] = {k: v for k, v in result.items() if k.startswith(("BLEU", "CIDEr")) or k in kept}
        return scores


def forget_shared_feedback_cache(features_dir: Path) -> None:
    """Delete the feedback feature cache that versions before run-private caches kept under
    FEATURES_DIR/feedback/: it may hold features of photos forgotten since."""
    shutil.rmtree(features_dir / "feedback", ignore_errors=True)


def promotion_gate(val: dict[str, list[str]], active_val: dict[str, float], tolerance: dict[str, float]) -> SelectionGate:
    """The promotion rule applied to one epoch's captions, for epoch selection: epochs are ranked on
    val plus the held-back photos, and the best of them may fail on val alone while an earlier
    epoch would have passed; with the gate the kept epoch is the best one that can be promoted."""

    def gate(captions: dict[str, str]) -> tuple[bool, dict[str, float]]:
        scores = score_captions(val, {name: captions[name] for name in val})
        gated = {metric: scores[metric] for metric in GATED_METRICS}
        return decide_promotion(gated, active_val, tolerance).promote, gated

    return gate


def replay_sample(train: dict[str, list[str]], count: int, seed: int = 0) -> list[str]:
    """A fixed random sample of `count` Flickr8k train photos (all of them if there are fewer)."""
    names = sorted(train)
    if count < len(names):
        names = sorted(np.random.default_rng(seed).choice(names, count, replace=False).tolist())
    return names


def warmup_data(
    train: dict[str, list[str]], replay: list[str], feedback: FeedbackData, repeats: int, own_captions: dict[str, str] | None = None
) -> tuple[dict[str, list[str]], dict[str, float]]:
    """Cross-entropy warm-up data: the feedback, weighted × `repeats`, beside the `replay` photos of
    Flickr8k train with their human captions or, given `own_captions`, the active model's caption, so
    the feedback is learned without forgetting (or unlearning) the rest."""
    weights = {name: weight * repeats for name, weight in feedback.weights.items()}
    replayed = {n: [own_captions[n]] if own_captions is not None else train[n] for n in replay}
    return {**replayed, **feedback.train}, weights


def _decoder_sizes(active: Captioner) -> dict[str, Any]:
    """The active decoder's sizes, for a from-scratch decoder of the same shape."""
    sizes = active.config.decoder.to_dict()
    for key in ("vocab_size", "feature_channels", "grid_cells", "image_word_ids"):
        sizes.pop(key)
    return sizes


def carried_top(active: Captioner) -> EncoderTop | None:
    """The active model's fine-tuned encoder top, unchanged in every bundle of the retraining (only
    the decoder is retrained; the cache holds the grid that top makes)."""
    top = active.config.encoder_top
    return EncoderTop(top, top_model(active.encoder.backbone, top.first_block), trained=False) if top else None
