"""The decoder's cross-entropy against Keras's own loss: plain and label-smoothed."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from captioning.decoder import AttentionDecoder, DecoderConfig

CONFIG = DecoderConfig(vocab_size=12, feature_channels=8, grid_cells=4, feature_dim=16, embed_dim=16, units=16, attention_dim=16)


@pytest.mark.parametrize("epsilon", [0.0, 0.1, 0.3])
def test_sequence_loss_is_keras_categorical_crossentropy_over_real_tokens(epsilon):
    decoder = AttentionDecoder(CONFIG)
    decoder.build_all()
    grid = tf.constant(np.random.default_rng(0).normal(size=(2, 4, 8)), tf.float32)
    tokens = tf.constant([[1, 5, 6, 7, 2], [1, 8, 2, 0, 0]], tf.int32)  # the second caption is padded

    loss, nll, _ = decoder.sequence_loss(grid, tokens, tf.ones(2), label_smoothing=epsilon)

    pre_outputs, _ = decoder.teacher_forced(grid, tokens)
    real = tokens[:, 1:] != 0
    logits = decoder.logits(tf.boolean_mask(pre_outputs, real))
    targets = tf.one_hot(tf.boolean_mask(tokens[:, 1:], real), CONFIG.vocab_size)
    reference = keras.losses.categorical_crossentropy(targets, logits, from_logits=True, label_smoothing=epsilon)
    plain = keras.losses.categorical_crossentropy(targets, logits, from_logits=True)
    assert reference.shape == (6,)  # four words of the first caption, two of the second: padding is out
    np.testing.assert_allclose(float(loss), float(tf.reduce_mean(reference)), rtol=1e-5)
    np.testing.assert_allclose(float(nll), float(tf.reduce_mean(plain)), rtol=1e-5)
    if epsilon:
        assert float(loss) != pytest.approx(float(nll))
