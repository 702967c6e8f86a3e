"""Decoding and bundles: beam width 1 is greedy, a reloaded bundle captions identically, a broken
bundle is refused with BundleError, and the state-carrying decoder matches teacher forcing."""
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from captioning.bundle import WEIGHTS_FILE, BundleError, load_decoder
from captioning.captioner import Captioner
from captioning.search import CompiledDecoder, beam_search, greedy_search
from captioning.testing import write_random_bundle


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return write_random_bundle(tmp_path_factory.mktemp("bundle") / "random")


@pytest.fixture(scope="module")
def decoder_and_vocab(bundle):
    _, vocab, decoder = load_decoder(bundle)
    return decoder, vocab


def random_grid(n=4, seed=0):
    return np.random.default_rng(seed).random((n, 49, 1280), dtype=np.float32)


def test_beam_width_one_equals_greedy(decoder_and_vocab):
    decoder, vocab = decoder_and_vocab
    compiled, grid = CompiledDecoder(decoder), random_grid()
    greedy = greedy_search(compiled, grid, vocab.start_id, vocab.end_id, 12)
    beam = beam_search(compiled, grid, vocab.start_id, vocab.end_id, 12, beam=1)
    assert [h.ids for h in greedy] == [h.ids for h in beam]
    np.testing.assert_allclose([h.log_prob for h in greedy], [h.log_prob for h in beam], rtol=1e-5)


def test_wider_beam_never_finds_a_less_likely_caption_than_greedy(decoder_and_vocab):
    decoder, vocab = decoder_and_vocab
    compiled, grid = CompiledDecoder(decoder), random_grid(seed=1)
    greedy = greedy_search(compiled, grid, vocab.start_id, vocab.end_id, 12)
    beam = beam_search(compiled, grid, vocab.start_id, vocab.end_id, 12, beam=5)
    for g, b in zip(greedy, beam):
        assert b.log_prob >= g.log_prob - 1e-4


def test_step_by_step_decoding_matches_teacher_forcing(decoder_and_vocab):
    """Carrying the LSTM state one token at a time computes what the whole-sequence pass computes."""
    decoder, vocab = decoder_and_vocab
    grid = random_grid(2)
    tokens = tf.constant([[vocab.start_id, 5, 6, 7], [vocab.start_id, 8, 9, 4]], tf.int32)
    pre_outputs, alphas = decoder.teacher_forced(tf.constant(grid), tokens)
    features, keys, h, c = decoder.start(tf.constant(grid))
    for t in range(3):
        pre_output, h, c, alpha = decoder.step(tokens[:, t], h, c, features, keys)
        np.testing.assert_allclose(pre_output.numpy(), pre_outputs[:, t].numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(alpha.numpy().sum(axis=1), 1.0, rtol=1e-5)


def test_reloaded_bundle_gives_identical_captions(bundle):
    image = Image.new("RGB", (300, 200), (200, 30, 30))
    first = Captioner.load(bundle).caption([image], beam=3)[0]
    second = Captioner.load(bundle).caption([image], beam=3)[0]
    assert first.text == second.text and first.log_prob == pytest.approx(second.log_prob, rel=1e-6)
    assert first.attention.shape == (len(first.words), 49)


def test_bundle_with_damaged_weights_is_refused(bundle, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in bundle.iterdir():
        (broken / path.name).write_bytes(path.read_bytes())
    (broken / WEIGHTS_FILE).write_bytes(b"not an archive")
    with pytest.raises(BundleError):
        load_decoder(broken)


def test_special_tokens_other_than_end_are_never_generated(decoder_and_vocab):
    decoder, vocab = decoder_and_vocab
    compiled = CompiledDecoder(decoder)
    for hypothesis in beam_search(compiled, random_grid(8, seed=3), vocab.start_id, vocab.end_id, 12, beam=3):
        assert not {vocab.pad_id, vocab.start_id, vocab.unk_id} & set(hypothesis.ids)
