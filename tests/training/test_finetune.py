"""Growing a trained decoder for a vocabulary with new words keeps everything it learned."""
import numpy as np
import tensorflow as tf

from captioning.decoder import AttentionDecoder, DecoderConfig
from captioning.text import Vocabulary
from training.finetune import grow_decoder


def trained_looking_decoder(vocab_size: int) -> AttentionDecoder:
    decoder = AttentionDecoder(DecoderConfig(vocab_size, 32, 9, feature_dim=16, embed_dim=16, units=16, attention_dim=16))
    decoder.build_all()
    rng = np.random.default_rng(0)
    for variable in decoder.weights:  # not the initialiser's values, so a copy is really a copy
        variable.assign(rng.normal(0, 0.3, variable.shape).astype(np.float32))
    return decoder


def test_growing_keeps_old_word_rows_and_every_other_weight_and_adds_rows_for_new_words():
    old_vocab = Vocabulary("a dog runs on grass".split())
    new_vocab = old_vocab.extend(["scarlet", "tile", "dog", "snow"])
    assert new_vocab.words[: len(old_vocab)] == old_vocab.words and len(new_vocab) == len(old_vocab) + 3
    old = trained_looking_decoder(len(old_vocab))

    grown = grow_decoder(old, len(new_vocab))

    n = len(old_vocab)
    old_weights = {v.path: v.numpy() for v in old.weights}
    for variable in grown.weights:
        value, before = variable.numpy(), old_weights[variable.path]
        if variable.path == "embedding/embeddings":
            np.testing.assert_array_equal(value[:n], before)
            assert value.shape == (n + 3, 16) and not np.allclose(value[n:], 0)
        elif variable.path == "out_vocab/kernel":
            np.testing.assert_array_equal(value[:, :n], before)
            assert value.shape == (16, n + 3)
        elif variable.path == "out_vocab/bias":
            np.testing.assert_array_equal(value[:n], before)
            np.testing.assert_allclose(value[n:], np.median(before))
        else:
            np.testing.assert_array_equal(value, before)
    assert old.config.vocab_size == n and old.weights[0] is not grown.weights[0]


def test_a_grown_decoder_gives_the_old_words_the_same_scores_as_before():
    old = trained_looking_decoder(9)
    grown = grow_decoder(old, 12)
    grid = tf.constant(np.random.default_rng(1).normal(size=(2, 9, 32)), tf.float32)
    words = tf.constant([4, 7], tf.int32)

    def logits(decoder):
        features, keys, h, c = decoder.start(grid)
        pre_output, *_ = decoder.step(words, h, c, features, keys)
        return decoder.logits(pre_output).numpy()

    np.testing.assert_allclose(logits(grown)[:, :9], logits(old), rtol=1e-5, atol=1e-6)


def test_image_words_start_silent_and_a_second_growth_keeps_the_first_ones_image_terms():
    old = trained_looking_decoder(9)
    grown = grow_decoder(old, 11, image_words=[9, 10])
    assert grown.config.image_word_ids == [9, 10]
    grid = tf.constant(np.random.default_rng(1).normal(size=(2, 9, 32)), tf.float32)
    plain = grow_decoder(old, 11)

    def logits(decoder):
        features, keys, h, c = decoder.start(grid)
        pre_output, *_ = decoder.step(tf.constant([4, 7]), h, c, features, keys)
        return decoder.logits(pre_output, decoder.image_summary(features)).numpy()

    np.testing.assert_allclose(logits(grown), logits(plain), rtol=1e-5, atol=1e-6)  # zero image terms at first

    kernel = next(v for v in grown.weights if v.path == "image_words/kernel")
    learned = np.random.default_rng(2).normal(size=kernel.shape).astype(np.float32)
    kernel.assign(learned)
    again = grow_decoder(grown, 13, image_words=[10, 12])  # 10 is an image word already
    assert again.config.image_word_ids == [9, 10, 12]
    value = next(v for v in again.weights if v.path == "image_words/kernel").numpy()
    np.testing.assert_array_equal(value[:, :2], learned)
    np.testing.assert_array_equal(value[:, 2], 0.0)


def test_an_image_word_is_scored_by_the_image_in_search_and_in_the_training_loss_alike():
    """The image term reads the whole image: two photos give one image word different scores, and
    teacher forcing (the training loss) sees the same logits as step-by-step decoding (the search)."""
    decoder = grow_decoder(trained_looking_decoder(9), 10, image_words=[9])
    kernel = next(v for v in decoder.weights if v.path == "image_words/kernel")
    kernel.assign(np.random.default_rng(3).normal(0, 1.0, kernel.shape).astype(np.float32))
    grid = tf.constant(np.random.default_rng(4).normal(size=(2, 9, 32)), tf.float32)
    tokens = tf.constant([[1, 4, 9, 7], [1, 5, 6, 9]], tf.int32)

    features, keys, h, c = decoder.start(grid)
    step_nll = []
    for t in range(3):
        pre_output, h, c, _ = decoder.step(tokens[:, t], h, c, features, keys)
        logits = decoder.logits(pre_output, decoder.image_summary(features))
        step_nll.append(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tokens[:, t + 1], logits=logits).numpy())
    _, nll, _ = decoder.sequence_loss(grid, tokens, tf.ones(2))
    np.testing.assert_allclose(float(nll), np.mean(step_nll), rtol=1e-5)

    image_scores = decoder.image_word_logits(decoder.image_summary(features)).numpy()
    assert image_scores[0, 9] != image_scores[1, 9]
    np.testing.assert_array_equal(image_scores[:, :9], 0.0)
