"""Attention for a given caption: feeding the words a beam search chose reproduces the weights the
search saw, agrees with teacher forcing, and the drawing is a PNG with a panel per word."""
import io

import numpy as np
import pytest
import keras
import tensorflow as tf
from PIL import Image

from captioning.attention_map import COLUMNS, attention_png
from captioning.captioner import Captioner
from captioning.testing import write_random_bundle


@pytest.fixture(scope="module")
def captioner(tmp_path_factory):
    keras.utils.set_random_seed(17)  # the same random decoder every run: its captions have words
    return Captioner.load(write_random_bundle(tmp_path_factory.mktemp("bundle") / "random"))


def photo(seed: int) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    return Image.fromarray(pixels).resize((320, 240), Image.Resampling.NEAREST)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_feeding_the_beam_searchs_caption_gives_the_attention_the_search_saw(captioner, seed):
    searched = captioner.caption([photo(seed)], beam=3)[0]
    assert searched.words, "the random model said nothing: nothing would be compared"
    pixels, attended = captioner.attend(photo(seed), searched.text)
    assert attended.words == searched.words
    assert pixels.shape == (captioner.encoder.input_size, captioner.encoder.input_size, 3)
    np.testing.assert_allclose(attended.attention, searched.attention, atol=1e-5)


def test_attention_for_a_given_text_agrees_with_teacher_forcing(captioner):
    text = "a dog runs on the grass"
    _, attended = captioner.attend(photo(3), text)
    grid, _ = captioner.encoder.encode(captioner.attend(photo(3), text)[0][None])
    tokens = tf.constant([captioner.vocab.encode(text)], tf.int32)
    _, alphas = captioner.decoder.teacher_forced(tf.constant(grid), tokens)
    assert attended.words == text.split()
    np.testing.assert_allclose(attended.attention, alphas.numpy()[0][: len(attended.words)], atol=1e-5)
    np.testing.assert_allclose(attended.attention.sum(axis=1), 1.0, rtol=1e-5)


def test_words_the_model_does_not_know_still_get_a_panel_under_their_own_name(captioner):
    _, attended = captioner.attend(photo(4), "A zebra, on the grass!")
    assert attended.words == ["a", "zebra", "on", "the", "grass"]
    assert attended.attention.shape == (5, captioner.encoder.grid_size[0] * captioner.encoder.grid_size[1])


def test_the_drawing_is_a_png_with_one_panel_per_word_after_the_image():
    grid_size = (7, 7)
    image = np.full((224, 224, 3), 128, np.uint8)
    weights = np.random.default_rng(0).random((9, 49)).astype(np.float32)
    one_row = Image.open(io.BytesIO(attention_png(image, ["w"] * (COLUMNS - 1), weights[: COLUMNS - 1], grid_size)))
    two_rows = Image.open(io.BytesIO(attention_png(image, ["w"] * 9, weights, grid_size)))
    assert one_row.format == two_rows.format == "PNG"
    assert two_rows.height > one_row.height * 1.8 and two_rows.width == one_row.width
