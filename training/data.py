"""Training examples from a feature cache: (feature row, token ids, weight) with tf.data batching.

Batches are bucketed by caption length, so a batch of short captions is not padded to the longest
caption in the set: rows whose caption has ended cost (almost) nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from captioning.text import Vocabulary
from training.features import FeatureCache

BUCKET_BOUNDARIES = [12, 15, 18, 22, 27]


@dataclass
class CaptionExamples:
    rows: np.ndarray  # (M,) row of each example's image in the feature cache
    tokens: list[list[int]]  # <start> … <end>
    weights: np.ndarray  # (M,) loss weight (feedback captions may count more or less)


def make_examples(
    images: dict[str, list[str]], cache: FeatureCache, vocab: Vocabulary, max_words: int, weights: dict[str, float] | None = None
) -> CaptionExamples:
    """One example per (image, caption); `weights` optionally maps image name → weight."""
    names = sorted(images)
    name_rows = dict(zip(names, cache.rows(names)))
    rows, tokens, example_weights = [], [], []
    for name in names:
        for caption in images[name]:
            rows.append(name_rows[name])
            tokens.append(vocab.encode(caption, max_words))
            example_weights.append((weights or {}).get(name, 1.0))
    return CaptionExamples(np.array(rows, np.int64), tokens, np.array(example_weights, np.float32))


def batched_dataset(examples: CaptionExamples, batch_size: int, seed: int) -> tf.data.Dataset:
    """Shuffled, length-bucketed batches of (rows, tokens (B, T), weights); T is a bucket boundary."""
    tokens = [np.array(t, np.int32) for t in examples.tokens]

    def generate():
        yield from zip(examples.rows, tokens, examples.weights)

    signature = (tf.TensorSpec([], tf.int64), tf.TensorSpec([None], tf.int32), tf.TensorSpec([], tf.float32))
    dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
    dataset = dataset.shuffle(len(examples.tokens), seed=seed, reshuffle_each_iteration=True)
    boundaries = [b for b in BUCKET_BOUNDARIES if b < max(len(t) for t in examples.tokens)]
    dataset = dataset.bucket_by_sequence_length(
        element_length_func=lambda row, tokens, weight: tf.shape(tokens)[0],
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        pad_to_bucket_boundary=False,
        drop_remainder=len(examples.tokens) >= 4 * batch_size,
    )
    return dataset.map(_pad_to_bucket).prefetch(2)


def _pad_to_bucket(rows, tokens, weights):
    """Pad T up to the next boundary so the training step is traced once per bucket, not per length."""
    length = tf.shape(tokens)[1]
    bounds = tf.constant(BUCKET_BOUNDARIES + [64], tf.int32)
    target = tf.reduce_min(tf.boolean_mask(bounds, bounds >= length))
    tokens = tf.pad(tokens, [[0, 0], [0, target - length]])
    return rows, tokens, weights
