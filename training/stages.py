"""A training run's stages around a Trainer (training/train.py): cross-entropy epochs, then
self-critical (SCST) ones. After each epoch: the val score, the bundle when the epoch is the best
so far, the checkpoint (training/checkpoint.py), and only then the progress event.
"""
from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from captioning.bundle import WEIGHTS_FILE, BundleConfig, load_decoder_weights, save_bundle, save_decoder_weights
from captioning.directory_swap import clean_leftovers
from captioning.encoder_top import TOP_WEIGHTS_FILE, load_top_weights
from captioning.metrics import CiderD
from captioning.specificity import SPECIFICITY_KEYS
from training.checkpoint import Checkpoint, Progress, check_fits, first_epoch, restore_variables, write_checkpoint
from training.data import BUCKET_BOUNDARIES, CaptionExamples, batched_dataset, make_examples
from training.self_critical import SelfCriticalData, distinctive_rewards

if TYPE_CHECKING:
    from training.train import Trainer

log = logging.getLogger(__name__)
ProgressCallback = Callable[[dict], None]
# An epoch's captions of the selection photos → (would this epoch pass the promotion rule, its scores).
SelectionGate = Callable[[dict[str, str]], tuple[bool, dict[str, float]]]


@dataclass
class TrainResult:
    bundle_dir: Path
    history: list[dict]
    best_scores: dict


class StageRun:
    """One call of Trainer.fit: the epochs still to train and the record they keep (history, the
    best score so far and its bundle, the patience count), carried over from a checkpoint."""

    def __init__(self, trainer: Trainer, train: dict[str, list[str]], val: dict[str, list[str]], out_dir: Path, version: str,
                 weights: dict[str, float] | None, training_info: dict | None, on_progress: ProgressCallback | None,
                 self_critical: SelfCriticalData | None, gate: SelectionGate | None, run_args: dict | None,
                 resume: Checkpoint | None, checkpoints: bool):
        config = self.config = trainer.config
        self.trainer, self.val, self.version, self.gate = trainer, val, version, gate
        self.resume, self.checkpoints = resume, checkpoints
        self.self_critical = self_critical or SelfCriticalData(train)
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.examples = make_examples(train, trainer.cache, trainer.vocab, config.max_words, weights)
        self.steps_per_epoch = max(1, len(self.examples.tokens) // config.batch_size)
        self.run = {"version": version, "training_info": training_info or {}, "models": trainer.model_configs(),
                    "train_captions": len(self.examples.tokens), "args": run_args or {}}
        self.done = done = resume.progress if resume is not None else None
        if resume is not None:
            check_fits(resume, config.to_dict(), self.run, trainer.vocab)
            restore_variables(resume, trainer.checkpoint_variables())
            log.info("resuming after %s epoch %d of %s", done.stage, done.epoch, self.out_dir)
        self.history: list[dict] = list(done.history) if done else []
        # (passes the gate, score)
        self.best_score, self.best_scores, self.stale = (done.best_score, done.best_scores, done.stale) if done else ((False, -math.inf), {}, 0)
        self.bundle_dir = self.out_dir / "bundle"
        clean_leftovers(self.bundle_dir)  # a run stopped while it swapped the bundle in left the previous one aside
        self.info = {**(training_info or {}), "train_images": len(train), "train_captions": len(self.examples.tokens),
                     "config": config.to_dict()}
        self.emit = on_progress or (lambda event: None)
        self.xe_epochs = min(config.epochs, config.stop_after_epochs or config.epochs)
        self.total_epochs = config.epochs + config.scst_epochs

    def train(self) -> TrainResult:
        c, trainer = self.config, self.trainer
        if c.epochs and (first := first_epoch(self.done, "xe", self.xe_epochs)) is not None:
            # within the stage, its optimizer (step count, moments, averages) goes on too
            trainer.start_stage(c.learning_rate, self.steps_per_epoch * c.epochs, resume=self.resume if first > 1 else None)
            for epoch in range(first, self.xe_epochs + 1):
                started = time.time()
                trainer.reseed("xe", epoch)
                loss = run_xe_epoch(trainer, self.examples, epoch, self.steps_per_epoch)
                if self.finish_epoch("xe", epoch, loss, time.time() - started):
                    break
        if c.scst_epochs and (first := first_epoch(self.done, "scst", c.scst_epochs)) is not None:
            if first == 1:
                if self.bundle_dir.exists():  # continue from the best cross-entropy weights
                    load_decoder_weights(trainer.decoder, self.bundle_dir / WEIGHTS_FILE)
                    if trainer.trained_top is not None:
                        load_top_weights(trainer.trained_top, self.bundle_dir / TOP_WEIGHTS_FILE)
                self.stale = 0  # SCST gets its own patience; the best score to beat carries over
            steps = c.scst_epochs * math.ceil(self.self_critical.draws_per_epoch / c.scst_images_per_batch)
            trainer.start_stage(c.scst_learning_rate, steps, self_critical=True, resume=self.resume if first > 1 else None)
            cider = self.self_critical.reward()
            for epoch in range(first, c.scst_epochs + 1):
                started = time.time()
                trainer.reseed("scst", epoch)
                reward = run_scst_epoch(trainer, self.self_critical, cider, epoch)
                if self.finish_epoch("scst", epoch, -reward, time.time() - started):
                    break
        return TrainResult(self.bundle_dir, self.history, self.best_scores)

    def finish_epoch(self, stage: str, epoch: int, loss: float, seconds: float) -> bool:
        """Score the epoch (the stage's `epoch`-th) on val; with weight averaging both the average
        and the raw weights are scored, and whichever beats the best so far becomes the bundle.
        Then the checkpoint, and only then the progress event: an event's epoch is saved."""
        c, trainer = self.config, self.trainer
        number = epoch if stage == "xe" else c.epochs + epoch
        record = {"stage": stage, "epoch": number, "loss": loss, "seconds": round(seconds, 1), "val_search": trainer.val_search}
        raw_scores = self.score_weights(record, stage, number, "val_raw_", "-raw") if trainer.averaging else None
        with trainer.averaged_weights():
            scores = self.score_weights(record, stage, number, "val_", "")
            self.history.append(record)
            (self.out_dir / "history.json").write_text(json.dumps(self.history, indent=1))
            kept = self.keep_if_best(scores, record, "average" if raw_scores is not None else None)
        if raw_scores is not None and self.keep_if_best(raw_scores, record, "raw"):
            kept = "raw"
        log.info("%s epoch %d: loss %.3f, val %s BLEU-4 %.3f CIDEr %.3f%s", stage, number, loss, trainer.val_search, scores["BLEU-4"], scores["CIDEr"], f" (best: {kept})" if kept else "")
        if not kept:
            self.stale += 1
        stopped = self.stale >= c.patience
        if self.checkpoints:
            stage_over = stopped or epoch >= (self.xe_epochs if stage == "xe" else c.scst_epochs)
            progress = Progress(stage, epoch, stopped, stage_over and (stage == "scst" or not c.scst_epochs), self.best_score,
                                self.best_scores, self.stale, self.history)
            write_checkpoint(self.out_dir, progress, c.to_dict(), self.run, trainer.vocab, trainer.checkpoint_variables(), trainer.checkpoint_optimizers())
        self.emit({"event": "epoch", **record, "epochs": self.total_epochs})
        return stopped

    def score_weights(self, record: dict, stage: str, number: int, prefix: str, suffix: str) -> dict:
        """Val scores of the decoder's current weights, into the record (and kept on disk if asked)."""
        trainer = self.trainer
        scores, captions = trainer.evaluate(self.val)
        record.update({f"{prefix}{k}": v for k, v in scores.items() if k.startswith(("BLEU", "CIDEr")) or k in SPECIFICITY_KEYS})
        if self.gate is not None:
            passes, gated = self.gate(captions)
            scores = {**scores, "passes_gate": passes}
            record.update({f"{prefix}gate_{k}": v for k, v in gated.items()} | {f"{prefix}passes_gate": passes})
        if self.config.keep_epoch_weights:
            (self.out_dir / "epochs").mkdir(exist_ok=True)
            save_decoder_weights(trainer.decoder, self.out_dir / "epochs" / f"{number:02d}-{stage}{suffix}.weights.npz")
        return scores

    def keep_if_best(self, scores: dict, record: dict, weights: str | None) -> str | None:
        """Save the decoder as it is now as the bundle if `scores` beat the best so far; says which
        weights were kept."""
        c, trainer = self.config, self.trainer
        score = (scores.get("passes_gate", True), scores[c.select_on])
        if score <= self.best_score:
            return None
        self.best_score, self.best_scores, self.stale = score, scores, 0
        best = {**record, "weights": weights} if weights else record
        top = trainer.encoder_top
        config = BundleConfig(
            self.version, c.encoder, trainer.decoder.config, length_penalty=c.length_penalty, block_repeats=c.block_repeats,
            training={**self.info, "best_epoch": best}, metrics={f"val_{trainer.val_search}": scores},
            encoder_top=top.config if top else None,
        )
        save_bundle(self.bundle_dir, config, trainer.vocab, trainer.decoder, top.model if top else None)
        return weights or "weights"


def run_xe_epoch(trainer: Trainer, examples: CaptionExamples, epoch: int, steps: int) -> float:
    dataset = batched_dataset(examples, trainer.config.batch_size, trainer.config.seed + epoch)
    losses = []
    with tqdm(dataset, total=steps, desc=f"epoch {epoch} (xe)", unit="batch", leave=False) as bar:
        for rows, tokens, weights in bar:
            nll, _ = trainer.train_step(rows, tokens, weights)
            losses.append(float(nll))
            if len(losses) % 20 == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-100:]):.3f}")
    return float(np.mean(losses))


def run_scst_epoch(trainer: Trainer, data: SelfCriticalData, cider: CiderD, epoch: int) -> float:
    """Sample k captions per image; advantage = (reward − mean reward of the image's other samples)
    × the image's weight."""
    c, vocab = trainer.config, trainer.vocab
    rng = np.random.default_rng(c.seed + epoch)
    names = data.epoch_order(rng)
    rewards_seen = []
    batches = range(0, len(names), c.scst_images_per_batch)
    with tqdm(batches, desc=f"epoch {epoch} (scst)", unit="batch", leave=False) as bar:
        for batch, start in enumerate(bar):
            chunk = names[start : start + c.scst_images_per_batch]
            rows = tf.constant(trainer.self_critical_rows(chunk, rng), tf.int32)
            grid = trainer.grid_of_rows(rows)
            samples = trainer.sampler(grid, seed=(c.seed + epoch) * 100_000 + batch)
            words = [s.ids[: c.max_words] for s in samples]  # one that never ended is cut where training cuts
            rewards = distinctive_rewards(cider, chunk, [vocab.decode(ids) for ids in words], c.scst_samples,
                                          c.scst_contrast, c.scst_contrast_photos)
            baseline = (rewards.sum(axis=1, keepdims=True) - rewards) / (c.scst_samples - 1)
            advantages = ((rewards - baseline) * data.step_weights(chunk)[:, None]).reshape(-1).astype(np.float32)
            longest = max(len(ids) for ids in words) + 2
            length = min(b for b in BUCKET_BOUNDARIES + [64] if b >= longest)  # one trace per bucket
            tokens = np.zeros((len(samples), length), np.int32)
            for i, ids in enumerate(words):
                seq = [vocab.start_id, *ids, vocab.end_id]
                tokens[i, : len(seq)] = seq
            trainer.train_step(rows, tf.constant(tokens), tf.constant(advantages))
            rewards_seen.append(rewards.mean())
            bar.set_postfix(reward=f"{np.mean(rewards_seen[-20:]):.3f}")
    return float(np.mean(rewards_seen))
