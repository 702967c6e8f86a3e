"""Per-epoch random seeds: every draw of an epoch (dropout masks, which view of a photo an example
sees, anything seeded from Python's, NumPy's or TensorFlow's global generator) follows from
(seed, stage, epoch) alone, so an epoch run after a resume draws what it would have drawn in an
uninterrupted run, and no generator state has to be saved.
"""
from __future__ import annotations

import zlib
from collections.abc import Sequence

import keras
import numpy as np


def epoch_seeds(seed: int, stage: str, epoch: int, count: int) -> list[int]:
    """`count` + 1 well-mixed 32-bit seeds for one epoch: the first for the global generators, one
    for each seed-generator state."""
    entropy = [seed, zlib.crc32(stage.encode()), epoch]
    return [int(s) for s in np.random.SeedSequence(entropy).generate_state(count + 1)]


def seed_epoch(seed: int, stage: str, epoch: int, states: Sequence) -> None:
    """Reseed the global generators and set each Keras seed-generator state (a `[seed, counter]`
    variable, e.g. a Dropout layer's) for the start of this epoch."""
    first, *others = epoch_seeds(seed, stage, epoch, len(states))
    keras.utils.set_random_seed(first)
    for state, value in zip(states, others):
        state.assign(np.array([value, 0], dtype=state.dtype))
