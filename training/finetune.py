"""Fine-tuning a trained decoder on a grown vocabulary.

`Vocabulary.extend` keeps every old id and appends new words, so a decoder for the grown
vocabulary is the old one with rows added: the embedding gains rows, the output layer gains
kernel columns and bias entries; every other weight is copied unchanged. New rows start small
and near the old ones' statistics, so the model's captions are unchanged until training moves them.

Words named as image words (the new words of a retraining) also get an output term that reads the
whole image (`AttentionDecoder.image_words`), starting at zero: earlier image words keep theirs.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from captioning.decoder import AttentionDecoder

# Variables whose vocabulary axis grows: path → axis.
VOCAB_AXES = {"embedding/embeddings": 0, "out_vocab/kernel": 1, "out_vocab/bias": 0}
# The image words' kernel: one column per image word (AttentionDecoder.image_words).
IMAGE_WORDS_KERNEL = "image_words/kernel"


def grow_decoder(decoder: AttentionDecoder, vocab_size: int, seed: int = 0, image_words: Sequence[int] = ()) -> AttentionDecoder:
    """A new decoder for `vocab_size` words (≥ the old size) with the old decoder's weights copied in,
    and `image_words` (ids) added to its image words.

    The old decoder is left untouched, so it can keep serving or be evaluated beside the new one.
    """
    old_size = decoder.config.vocab_size
    if vocab_size < old_size:
        raise ValueError(f"a vocabulary only grows: {vocab_size} < {old_size}")
    old_image_words = list(decoder.config.image_word_ids)
    added_image_words = [i for i in dict.fromkeys(image_words) if i not in old_image_words]
    if any(not 0 <= i < vocab_size for i in added_image_words):
        raise ValueError(f"image words {added_image_words} outside a vocabulary of {vocab_size}")
    grown = AttentionDecoder(
        dataclasses.replace(decoder.config, vocab_size=vocab_size, image_word_ids=old_image_words + added_image_words)
    )
    grown.build_all()
    old_values = {v.path: np.asarray(v.numpy()) for v in decoder.weights}
    if set(old_values) - {IMAGE_WORDS_KERNEL} != {v.path for v in grown.weights} - {IMAGE_WORDS_KERNEL}:
        raise ValueError("the decoders' variables differ beyond the vocabulary size")
    rng = np.random.default_rng(seed)
    for variable in grown.weights:
        if variable.path == IMAGE_WORDS_KERNEL:  # earlier image words' columns kept, new ones at zero
            value = np.zeros(tuple(variable.shape), np.float32)
            if IMAGE_WORDS_KERNEL in old_values:
                value[:, : len(old_image_words)] = old_values[IMAGE_WORDS_KERNEL]
            variable.assign(value)
            continue
        old = old_values[variable.path]
        axis = VOCAB_AXES.get(variable.path)
        value = old if axis is None else _grown_rows(variable.path, old, vocab_size - old_size, axis, rng)
        if tuple(value.shape) != tuple(variable.shape):
            raise ValueError(f"{variable.path}: shape {value.shape} does not fit {tuple(variable.shape)}")
        variable.assign(value.astype(np.float32))
    return grown


def _grown_rows(path: str, old: np.ndarray, added: int, axis: int, rng: np.random.Generator) -> np.ndarray:
    """`old` with `added` new slices along `axis`.

    Embedding rows and output columns: small random values at the old ones' spread (a tenth), so
    new words start distinct but quiet. Output biases: the old biases' median, so a new word is
    neither favoured nor impossible before it is trained.
    """
    if added == 0:
        return old
    shape = list(old.shape)
    shape[axis] = added
    if path.endswith("bias"):
        new = np.full(shape, np.median(old), np.float32)
    else:
        new = rng.normal(0.0, 0.1 * float(old.std()) + 1e-4, size=shape).astype(np.float32)
    return np.concatenate([old, new], axis=axis)
