"""The attention LSTM decoder (Show, Attend and Tell, soft attention) in Keras 3.

One call per token: `step` takes the previous word and the LSTM state and returns the new state,
the attention weights and the pre-output features; `logits` maps those to the vocabulary. Training
runs `step` over a whole caption inside one tf.function and applies `logits` once to every
non-padding position, so ended captions cost nothing in the largest matrix product.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import keras
import tensorflow as tf


@dataclass
class DecoderConfig:
    vocab_size: int
    feature_channels: int = 1280
    grid_cells: int = 81
    feature_dim: int = 512  # grid features are projected to this size once per image
    embed_dim: int = 512
    units: int = 512
    attention_dim: int = 512
    dropout: float = 0.5
    embed_dropout: float = 0.2
    attention_regularization: float = 1.0  # λ of the doubly stochastic penalty
    max_words: int = 30
    # Words whose output units also read the whole image (the mean of the projected grid): words
    # taught by feedback, which must recognise a kind of photo the frozen layers were never
    # trained to tell apart (docs/retraining.md). Empty for a model trained from scratch.
    image_word_ids: list[int] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "DecoderConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


class AttentionDecoder(keras.Model):
    """Soft attention over the image grid, a gating scalar, an LSTM and a deep output layer."""

    def __init__(self, config: DecoderConfig, dtype_policy: str = "float32", **kwargs) -> None:
        """`dtype_policy` "mixed_bfloat16" computes in bfloat16 over float32 weights (training on
        CPUs with bfloat16 instructions); losses and everything returned to a search are float32."""
        super().__init__(dtype=dtype_policy, **kwargs)
        self.config = config
        c = config
        dtype = {"dtype": dtype_policy}
        self.feature_projection = keras.layers.Dense(c.feature_dim, activation="relu", name="feature_projection", **dtype)
        self.attention_keys = keras.layers.Dense(c.attention_dim, name="attention_keys", **dtype)
        self.attention_query = keras.layers.Dense(c.attention_dim, name="attention_query", **dtype)
        self.attention_score = keras.layers.Dense(1, name="attention_score", **dtype)
        self.context_gate = keras.layers.Dense(c.feature_dim, activation="sigmoid", name="context_gate", **dtype)
        self.init_h = keras.layers.Dense(c.units, activation="tanh", name="init_h", **dtype)
        self.init_c = keras.layers.Dense(c.units, activation="tanh", name="init_c", **dtype)
        self.embedding = keras.layers.Embedding(c.vocab_size, c.embed_dim, name="embedding", **dtype)
        self.lstm = keras.layers.LSTMCell(c.units, name="lstm", **dtype)
        self.out_hidden = keras.layers.Dense(c.embed_dim, name="out_hidden", **dtype)
        self.out_context = keras.layers.Dense(c.embed_dim, use_bias=False, name="out_context", **dtype)
        self.out_vocab = keras.layers.Dense(c.vocab_size, name="out_vocab", **dtype)
        self.image_words = None
        if c.image_word_ids:
            self.image_words = keras.layers.Dense(
                len(c.image_word_ids), use_bias=False, kernel_initializer="zeros", name="image_words", **dtype
            )
            # (words read, vocabulary): scatters their logits into the vocabulary's columns
            self.image_word_columns = tf.one_hot(c.image_word_ids, c.vocab_size)
        self.feature_dropout = keras.layers.Dropout(c.dropout, **dtype)
        self.embed_dropout = keras.layers.Dropout(c.embed_dropout, **dtype)
        self.output_dropout = keras.layers.Dropout(c.dropout, **dtype)

    def start(self, grid: tf.Tensor, training: bool = False):
        """Per-image work done once: projected features, attention keys, the initial LSTM state."""
        features = self.feature_projection(tf.cast(grid, tf.float32))
        features = self.feature_dropout(features, training=training)
        keys = self.attention_keys(features)
        mean = tf.reduce_mean(features, axis=1)
        return features, keys, self.init_h(mean), self.init_c(mean)

    def step(self, words, h, c, features, keys, training: bool = False):
        """One token: returns (pre-output features, h, c, attention weights (B, cells))."""
        embedded = self.embed_dropout(self.embedding(words), training=training)
        scores = self.attention_score(tf.tanh(keys + self.attention_query(h)[:, None, :]))[..., 0]
        alpha = tf.nn.softmax(scores, axis=-1)
        context = tf.einsum("bl,bld->bd", alpha, features) * self.context_gate(h)
        _, (h, c) = self.lstm(tf.concat([embedded, context], axis=-1), (h, c), training=training)
        pre_output = tf.tanh(embedded + self.out_hidden(h) + self.out_context(context))
        return pre_output, h, c, alpha

    def logits(self, pre_output, image=None, training: bool = False):
        """Vocabulary logits; `image` (B, feature_dim), from `image_summary`, is needed only by a
        decoder with image words, whose logits gain a term that reads the whole image."""
        logits = self.out_vocab(self.output_dropout(pre_output, training=training))
        if self.image_words is not None:
            logits = logits + self.image_word_logits(image)
        return logits

    @staticmethod
    def image_summary(features):
        """The whole image as the image words read it: the mean of the projected grid (B, feature_dim)."""
        return tf.reduce_mean(features, axis=1)

    def image_word_logits(self, image):
        """(B, vocab_size): the image words' image terms in their columns, zeros elsewhere."""
        terms = self.image_words(image)
        return tf.matmul(terms, tf.cast(self.image_word_columns, terms.dtype))

    def teacher_forced(self, grid, tokens, training: bool = False):
        """Run a whole caption batch: returns (pre-outputs (B, T-1, E), attention (B, T-1, cells)).

        tokens is (B, T) with <start> first; position t predicts tokens[:, t + 1].
        """
        features, keys, h, c = self.start(grid, training)
        return self._unroll(tokens, h, c, features, keys, training)

    def _unroll(self, tokens, h, c, features, keys, training: bool):
        outputs, alphas = [], []
        for t in range(tokens.shape[1] - 1):
            pre_output, h, c, alpha = self.step(tokens[:, t], h, c, features, keys, training)
            outputs.append(pre_output)
            alphas.append(alpha)
        return tf.stack(outputs, axis=1), tf.stack(alphas, axis=1)

    def sequence_loss(self, grid, tokens, weights, training: bool = False, logit_bias=None, label_smoothing: float = 0.0):
        """Σ weight · token loss over real positions / number of real tokens, the mean NLL, and the
        attention penalty.

        With weights 1 this is cross-entropy; with advantages it is the self-critical policy gradient,
        and `logit_bias` (the sampler's −1e9 on words it never produces) makes the log-probabilities
        those of the distribution the captions were sampled from. `label_smoothing` ε mixes ε of a
        uniform target over the vocabulary into each word's one-hot target (a regulariser for
        cross-entropy; the returned NLL stays the plain one, so it is comparable across runs).
        """
        features, keys, h, c = self.start(grid, training)
        pre_outputs, alphas = self._unroll(tokens, h, c, features, keys, training)
        targets = tokens[:, 1:]
        mask = targets != 0
        logits = self.out_vocab(self.output_dropout(tf.boolean_mask(pre_outputs, mask), training=training))
        if self.image_words is not None:  # each caption's image term, at each of its real positions
            terms = self.image_words(self.image_summary(features))
            terms = tf.boolean_mask(tf.repeat(terms[:, None, :], tf.shape(targets)[1], axis=1), mask)
            logits = logits + tf.matmul(terms, tf.cast(self.image_word_columns, terms.dtype))
        logits = tf.cast(logits, tf.float32)
        if logit_bias is not None:
            logits = logits + logit_bias
        token_weights = tf.boolean_mask(tf.broadcast_to(weights[:, None], tf.shape(targets)), mask)
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.boolean_mask(targets, mask), logits=logits)
        token_loss = nll
        if label_smoothing:
            uniform_nll = -tf.reduce_mean(tf.nn.log_softmax(logits), axis=-1)
            token_loss = (1.0 - label_smoothing) * nll + label_smoothing * uniform_nll
        loss = tf.reduce_sum(token_loss * token_weights) / tf.cast(tf.size(nll), tf.float32)
        step_mask = tf.cast(mask, tf.float32)[..., None]
        coverage = tf.reduce_sum(tf.cast(alphas, tf.float32) * step_mask, axis=1)  # (B, cells): Σ_t α_ti should be near 1
        penalty = tf.reduce_mean(tf.reduce_sum((1.0 - coverage) ** 2, axis=-1))
        return loss, tf.reduce_mean(nll), penalty

    def build_all(self) -> None:
        """Create every weight by running one dummy step, so weights can be loaded or saved."""
        grid = tf.zeros((1, self.config.grid_cells, self.config.feature_channels))
        features, keys, h, c = self.start(grid)
        pre_output, *_ = self.step(tf.zeros((1,), tf.int32), h, c, features, keys)
        self.logits(pre_output, self.image_summary(features))
        self.built = True
