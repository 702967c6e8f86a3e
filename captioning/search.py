"""Decoding: greedy, beam and sampled search, batched over images.

The encoder runs once per image and the decoder once per token with its LSTM state carried, so a
caption costs one small step per word instead of re-running the whole prefix.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from captioning.decoder import AttentionDecoder
from captioning.text import PAD, SPECIAL_TOKENS, START, UNK

NEVER_GENERATED = tuple(SPECIAL_TOKENS.index(token) for token in (PAD, START, UNK))


def never_generated_bias(vocab_size: int, banned_ids: tuple[int, ...] = NEVER_GENERATED) -> np.ndarray:
    """Added to the logits: −1e9 on the words a search may never produce, 0 elsewhere."""
    bias = np.zeros(vocab_size, np.float32)
    bias[list(banned_ids)] = -1e9
    return bias


@dataclass
class Hypothesis:
    ids: list[int]  # word ids without <start> and <end>
    attention: np.ndarray  # (len(ids), cells): where the decoder looked for each word
    log_prob: float


class CompiledDecoder:
    """The decoder's start and step as tf.functions with fixed signatures: traced once, fast per call.

    <pad>, <start> and <unk> can never be produced: a caption saying "<unk>" helps nobody.
    """

    def __init__(self, decoder: AttentionDecoder, banned_ids: tuple[int, ...] = NEVER_GENERATED) -> None:
        c = decoder.config
        grid_spec = tf.TensorSpec([None, c.grid_cells, c.feature_channels], tf.float32)
        state_spec = tf.TensorSpec([None, c.units], tf.float32)
        feature_spec = tf.TensorSpec([None, c.grid_cells, c.feature_dim], tf.float32)
        key_spec = tf.TensorSpec([None, c.grid_cells, c.attention_dim], tf.float32)
        self.decoder = decoder
        # float32 in and out whatever the decoder computes in (bfloat16 while training)
        self.start = tf.function(lambda grid: _float32(decoder.start(grid)), input_signature=[grid_spec])

        banned = never_generated_bias(c.vocab_size, banned_ids)

        def step(words, h, c_state, features, keys):
            h, c_state, features, keys = (tf.cast(t, decoder.compute_dtype) for t in (h, c_state, features, keys))
            pre_output, h, c_state, alpha = decoder.step(words, h, c_state, features, keys)
            logits = tf.cast(decoder.logits(pre_output, decoder.image_summary(features)), tf.float32)
            return tf.nn.log_softmax(logits + banned), *_float32((h, c_state, alpha))

        self.step = tf.function(
            step, input_signature=[tf.TensorSpec([None], tf.int32), state_spec, state_spec, feature_spec, key_spec]
        )


def _float32(tensors):
    return tuple(tf.cast(t, tf.float32) for t in tensors)


def _tile(tensors, times: int):
    return [tf.repeat(t, times, axis=0) for t in tensors]


def greedy_search(model: CompiledDecoder, grid: np.ndarray, start_id: int, end_id: int, max_words: int) -> list[Hypothesis]:
    """The most likely word at every step."""
    features, keys, h, c = model.start(tf.convert_to_tensor(grid, tf.float32))
    n = grid.shape[0]
    words = np.full(n, start_id, np.int32)
    ids, alphas, log_probs = [], [], np.zeros(n)
    finished = np.zeros(n, bool)
    for _ in range(max_words + 1):
        logp, h, c, alpha = model.step(words, h, c, features, keys)
        logp = logp.numpy()
        words = logp.argmax(axis=1).astype(np.int32)
        log_probs += np.where(finished, 0.0, logp[np.arange(n), words])
        ids.append(words)
        alphas.append(alpha.numpy())
        finished |= words == end_id
        if finished.all():
            break
    return _collect(np.stack(ids, 1), np.stack(alphas, 1), log_probs, end_id)


def forced_attention(model: CompiledDecoder, grid: np.ndarray, start_id: int, ids: list[int]) -> np.ndarray:
    """(len(ids), cells): where the decoder looks for each of `ids` when fed the words before it.

    The same steps a search takes, with the words given instead of chosen: for a caption the search
    produced, these are the weights it saw (one image, `grid` (1, cells, channels))."""
    features, keys, h, c = model.start(tf.convert_to_tensor(grid, tf.float32))
    words = np.array([start_id], np.int32)
    rows = []
    for word in ids:
        _, h, c, alpha = model.step(words, h, c, features, keys)
        rows.append(alpha.numpy()[0])
        words = np.array([word], np.int32)
    return np.stack(rows) if rows else np.zeros((0, grid.shape[1]), np.float32)


def beam_search(
    model: CompiledDecoder,
    grid: np.ndarray,
    start_id: int,
    end_id: int,
    max_words: int,
    beam: int = 3,
    length_penalty: float = 0.0,
    content_words: np.ndarray | None = None,
) -> list[Hypothesis]:
    """Keep the `beam` best prefixes per image; rank finished ones by log p / ((5 + len) / 6) ** α.

    With `content_words` ((vocab,) bool) a prefix may not repeat a bigram that holds a content
    word: "a man is sitting on a bench on a bench" cannot happen, "a man in a red shirt in a park"
    still can. A length penalty makes such loops likelier (longer captions win), so the two go together.
    """
    n = grid.shape[0]
    features, keys, h, c = _tile(model.start(tf.convert_to_tensor(grid, tf.float32)), beam)
    rows = n * beam
    words = np.full(rows, start_id, np.int32)
    scores = np.tile(np.r_[0.0, np.full(beam - 1, -np.inf)], n)  # only the first beam is live at t=0
    finished = np.zeros(rows, bool)
    lengths = np.zeros(rows, np.int64)
    history = np.zeros((rows, 0), np.int32)
    attention = np.zeros((rows, 0, grid.shape[1]), np.float32)
    for _ in range(max_words + 1):
        logp, h, c, alpha = model.step(words, h, c, features, keys)
        logp = logp.numpy().astype(np.float64)
        vocab = logp.shape[1]
        if content_words is not None and history.shape[1] >= 2:
            _block_repeated_bigrams(logp, history, content_words)
        logp[finished] = -np.inf
        logp[finished, end_id] = 0.0  # a finished beam carries on unchanged
        total = (scores[:, None] + logp).reshape(n, beam * vocab)
        top = np.argpartition(-total, beam - 1, axis=1)[:, :beam]
        top = np.take_along_axis(top, np.argsort(-np.take_along_axis(total, top, 1), axis=1), 1)
        parent = (top // vocab + np.arange(n)[:, None] * beam).reshape(-1)
        words = (top % vocab).reshape(-1).astype(np.int32)
        scores = np.take_along_axis(total, top, 1).reshape(-1)
        was_finished = finished[parent]
        lengths = lengths[parent] + (~was_finished)
        finished = was_finished | (words == end_id)
        history = np.concatenate([history[parent], words[:, None]], axis=1)
        attention = np.concatenate([attention[parent], alpha.numpy()[parent][:, None]], axis=1)
        h, c = tf.gather(h, parent), tf.gather(c, parent)
        if finished.all():
            break
    normalised = scores / (((5.0 + lengths) / 6.0) ** length_penalty)
    best = normalised.reshape(n, beam).argmax(axis=1) + np.arange(n) * beam
    return _collect(history[best], attention[best], scores[best], end_id)


def _block_repeated_bigrams(logp: np.ndarray, history: np.ndarray, content_words: np.ndarray) -> None:
    """Set −∞ on every word w for which (last word, w) already occurs in the prefix and holds a content word."""
    last = history[:, -1]
    seen_after_last = history[:, :-1] == last[:, None]  # (rows, L-1): positions where the last word occurred before
    followers = history[:, 1:]  # the word that followed each of those occurrences
    banned = seen_after_last & (content_words[last][:, None] | content_words[followers])
    rows, positions = np.nonzero(banned)
    logp[rows, followers[rows, positions]] = -np.inf


def _collect(ids: np.ndarray, alphas: np.ndarray, log_probs: np.ndarray, end_id: int) -> list[Hypothesis]:
    results = []
    for row_ids, row_alphas, log_prob in zip(ids, alphas, log_probs):
        ends = np.flatnonzero(row_ids == end_id)
        length = int(ends[0]) if ends.size else len(row_ids)
        results.append(Hypothesis(row_ids[:length].tolist(), row_alphas[:length], float(log_prob)))
    return results


class CompiledBeamSearch:
    """`beam_search` as one tf.function: the whole search is a tf.while_loop, so a caption costs
    no Python round trip per word (about half of beam search's time on these CPUs). Traced once
    per beam width; it returns what `beam_search` returns (a test holds the two together)."""

    def __init__(self, model: CompiledDecoder, start_id: int, end_id: int, max_words: int, beam: int = 3) -> None:
        c = model.decoder.config
        vocab, cells, steps = c.vocab_size, c.grid_cells, max_words + 1
        self.end_id = end_id
        self._no_content_words = np.zeros(vocab, bool)  # stands in when blocking is off (the signature needs a mask)
        end_only = tf.constant(np.where(np.arange(vocab) == end_id, 0.0, -np.inf))  # what a finished beam may add

        def search(grid, length_penalty, content_words, block):
            n = tf.shape(grid)[0]
            rows = n * beam
            features, keys, h, c_state = (tf.repeat(t, beam, axis=0) for t in model.start(grid))
            first = tf.constant([0.0] + [-np.inf] * (beam - 1), tf.float64)  # only the first beam is live at t=0
            state = (
                tf.constant(0),
                tf.fill([rows], start_id),
                h,
                c_state,
                tf.tile(first, [n]),
                tf.zeros([rows], tf.bool),
                tf.zeros([rows], tf.int32),
                tf.zeros([rows, steps], tf.int32),
                tf.zeros([rows, steps, cells], tf.float32),
            )

            def not_done(t, words, h, c_state, scores, finished, lengths, history, attention):
                return tf.logical_and(t < steps, tf.logical_not(tf.reduce_all(finished)))

            def one_word(t, words, h, c_state, scores, finished, lengths, history, attention):
                logp, h, c_state, alpha = model.step(words, h, c_state, features, keys)
                logp = tf.cast(logp, tf.float64)
                logp = tf.cond(
                    tf.logical_and(block, t >= 2), lambda: _tf_block_repeated_bigrams(logp, history, t, content_words), lambda: logp
                )
                logp = tf.where(finished[:, None], end_only[None, :], logp)
                top_scores, top = tf.math.top_k(tf.reshape(scores[:, None] + logp, [n, beam * vocab]), beam)
                parent = tf.reshape(top // vocab + tf.range(n)[:, None] * beam, [-1])
                words = tf.reshape(top % vocab, [-1])
                was_finished = tf.gather(finished, parent)
                column = tf.one_hot(t, steps, dtype=tf.int32)[None, :]
                return (
                    t + 1,
                    words,
                    tf.gather(h, parent),
                    tf.gather(c_state, parent),
                    tf.reshape(top_scores, [-1]),
                    was_finished | (words == end_id),
                    tf.gather(lengths, parent) + tf.cast(tf.logical_not(was_finished), tf.int32),
                    tf.gather(history, parent) + column * words[:, None],
                    tf.gather(attention, parent) + tf.cast(column, tf.float32)[..., None] * tf.gather(alpha, parent)[:, None, :],
                )

            t, _, _, _, scores, _, lengths, history, attention = tf.while_loop(not_done, one_word, state)
            normalised = scores / tf.pow((5.0 + tf.cast(lengths, tf.float64)) / 6.0, tf.cast(length_penalty, tf.float64))
            best = tf.argmax(tf.reshape(normalised, [n, beam]), axis=1, output_type=tf.int32) + tf.range(n) * beam
            return tf.gather(history, best)[:, :t], tf.gather(attention, best)[:, :t], tf.gather(scores, best)

        grid_spec = tf.TensorSpec([None, cells, c.feature_channels], tf.float32)
        self._search = tf.function(
            search,
            input_signature=[grid_spec, tf.TensorSpec([], tf.float32), tf.TensorSpec([vocab], tf.bool), tf.TensorSpec([], tf.bool)],
        )

    def __call__(self, grid: np.ndarray, length_penalty: float = 0.0, content_words: np.ndarray | None = None) -> list[Hypothesis]:
        block = content_words is not None
        content = content_words if block else self._no_content_words
        ids, attention, log_probs = self._search(tf.convert_to_tensor(grid, tf.float32), float(length_penalty), content, block)
        return _collect(ids.numpy(), attention.numpy(), log_probs.numpy(), self.end_id)


def _tf_block_repeated_bigrams(logp: tf.Tensor, history: tf.Tensor, t: tf.Tensor, content_words: tf.Tensor) -> tf.Tensor:
    """`_block_repeated_bigrams` on the first t columns of a preallocated history, in TensorFlow."""
    last = history[:, t - 1]
    followers = history[:, 1:t]
    banned = (history[:, : t - 1] == last[:, None]) & (tf.gather(content_words, last)[:, None] | tf.gather(content_words, followers))
    where = tf.where(banned)  # (k, 2): row, position
    targets = tf.stack([where[:, 0], tf.cast(tf.gather_nd(followers, where), tf.int64)], axis=1)
    return tf.tensor_scatter_nd_update(logp, targets, tf.fill([tf.shape(where)[0]], tf.constant(-np.inf, tf.float64)))


class CompiledSampler:
    """Captions drawn word by word from the model's distribution, the whole loop one tf.function
    (self-critical training samples five captions for every train photo in every epoch).

    A row that has drawn <end> keeps drawing <end>. The draws are stateless: the same grid and
    seed give the same captions.
    """

    def __init__(self, model: CompiledDecoder, start_id: int, end_id: int, max_words: int) -> None:
        c = model.decoder.config
        steps = max_words + 1
        self.end_id = end_id

        def sample(grid, seed):
            n = tf.shape(grid)[0]
            features, keys, h, c_state = model.start(grid)
            state = (tf.constant(0), tf.fill([n], start_id), h, c_state, tf.zeros([n], tf.bool), tf.zeros([n], tf.float32), tf.zeros([n, steps], tf.int32))

            def not_done(t, words, h, c_state, finished, log_probs, history):
                return tf.logical_and(t < steps, tf.logical_not(tf.reduce_all(finished)))

            def one_word(t, words, h, c_state, finished, log_probs, history):
                logp, h, c_state, _ = model.step(words, h, c_state, features, keys)
                drawn = tf.random.stateless_categorical(logp, 1, seed=tf.stack([seed, tf.cast(t, tf.int64)]), dtype=tf.int32)[:, 0]
                words = tf.where(finished, end_id, drawn)
                word_logp = tf.gather(logp, words, batch_dims=1)
                log_probs += tf.where(finished, 0.0, word_logp)
                history += tf.one_hot(t, steps, dtype=tf.int32)[None, :] * words[:, None]
                return t + 1, words, h, c_state, finished | (words == end_id), log_probs, history

            t, _, _, _, _, log_probs, history = tf.while_loop(not_done, one_word, state)
            return history[:, :t], log_probs

        grid_spec = tf.TensorSpec([None, c.grid_cells, c.feature_channels], tf.float32)
        self._sample = tf.function(sample, input_signature=[grid_spec, tf.TensorSpec([], tf.int64)])

    def __call__(self, grid: np.ndarray | tf.Tensor, seed: int) -> list[Hypothesis]:
        """One caption per row of `grid`; `log_prob` is the caption's log-probability including <end>."""
        ids, log_probs = self._sample(tf.convert_to_tensor(grid, tf.float32), tf.constant(seed, tf.int64))
        ids = ids.numpy()
        return _collect(ids, np.zeros((*ids.shape, 1), np.float32), log_probs.numpy(), self.end_id)
