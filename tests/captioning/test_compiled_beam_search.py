"""The compiled beam search against the step-by-step NumPy one (the reference): the same captions,
attention and log-probabilities, whatever the width, length penalty and repeat blocking."""
import numpy as np
import pytest

from service.settings import DEFAULT_MODEL_DIR
from captioning.bundle import load_decoder
from captioning.captioner import Captioner
from captioning.images import load_image_array
from captioning.search import CompiledBeamSearch, CompiledDecoder, beam_search, greedy_search
from captioning.testing import write_random_bundle

VAL_PHOTOS = sorted((DEFAULT_MODEL_DIR.parents[1] / "tests" / "data" / "val").glob("*.jpg"))


def assert_same(reference, compiled):
    assert [h.ids for h in compiled] == [h.ids for h in reference]
    for r, c in zip(reference, compiled):
        np.testing.assert_allclose(c.attention, r.attention, atol=1e-6)
        assert c.log_prob == pytest.approx(r.log_prob, abs=1e-6)


@pytest.mark.parametrize("beam", [1, 2, 5])
def test_a_random_decoder_searches_the_same_either_way(tmp_path, beam):
    _, vocab, decoder = load_decoder(write_random_bundle(tmp_path / "random"))
    model = CompiledDecoder(decoder)
    grid = np.random.default_rng(beam).random((4, 49, 1280), dtype=np.float32)
    search = CompiledBeamSearch(model, vocab.start_id, vocab.end_id, 12, beam=beam)
    for alpha, content in ((0.0, None), (1.5, vocab.content_words())):
        reference = beam_search(model, grid, vocab.start_id, vocab.end_id, 12, beam=beam, length_penalty=alpha, content_words=content)
        assert_same(reference, search(grid, alpha, content))


def test_the_shipped_model_captions_val_photos_the_same_either_way():
    captioner = Captioner.load(DEFAULT_MODEL_DIR)
    grid, _ = captioner.encoder.encode(np.stack([load_image_array(path, captioner.encoder.input_size) for path in VAL_PHOTOS]))
    config = captioner.config
    reference = beam_search(
        captioner.compiled, grid, captioner.vocab.start_id, captioner.vocab.end_id, config.decoder.max_words, beam=3,
        length_penalty=config.length_penalty, content_words=captioner.content_words if config.block_repeats else None,
    )
    results = captioner.caption_features(grid, beam=3)  # the Captioner's own (compiled) search
    assert [r.words for r in results] == [captioner.vocab.decode(h.ids) for h in reference]
    np.testing.assert_allclose([r.log_prob for r in results], [h.log_prob for h in reference], atol=1e-6)


def test_the_captioners_width_one_is_plain_greedy_search():
    """Width 1 goes through the compiled search too, with no blocking and whatever α: the NumPy greedy loop's captions."""
    captioner = Captioner.load(DEFAULT_MODEL_DIR)
    grid, _ = captioner.encoder.encode(np.stack([load_image_array(path, captioner.encoder.input_size) for path in VAL_PHOTOS]))
    reference = greedy_search(captioner.compiled, grid, captioner.vocab.start_id, captioner.vocab.end_id, captioner.config.decoder.max_words)
    assert captioner.config.block_repeats and captioner.config.length_penalty > 0  # settings width 1 must ignore
    results = captioner.caption_features(grid, beam=1)
    assert [r.words for r in results] == [captioner.vocab.decode(h.ids) for h in reference]
    np.testing.assert_allclose([r.log_prob for r in results], [h.log_prob for h in reference], atol=1e-5)
