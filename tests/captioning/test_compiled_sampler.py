"""The compiled sampler that self-critical training draws captions from: it draws from the
model's own distribution (first words counted against the step's probabilities), carries the LSTM
state right (a sample's log-probability equals the step-by-step decoder's score of it), never
produces <pad>, <start> or <unk>, and is reproducible from its seed."""
import numpy as np
import pytest

from captioning.bundle import load_decoder
from captioning.search import NEVER_GENERATED, CompiledDecoder, CompiledSampler
from captioning.testing import write_random_bundle

MAX_WORDS = 12


@pytest.fixture(scope="module")
def peaked(tmp_path_factory):
    """A random decoder whose output layer is scaled up, so its word distributions are far from uniform."""
    _, vocab, decoder = load_decoder(write_random_bundle(tmp_path_factory.mktemp("sampler") / "random"))
    kernel, bias = decoder.out_vocab.get_weights()
    decoder.out_vocab.set_weights([kernel * 8.0, bias])
    model = CompiledDecoder(decoder)
    return model, vocab, CompiledSampler(model, vocab.start_id, vocab.end_id, MAX_WORDS)


def one_grid(rows: int) -> np.ndarray:
    return np.repeat(np.random.default_rng(0).random((1, 49, 1280), dtype=np.float32), rows, axis=0)


def test_first_words_follow_the_models_distribution(peaked):
    model, vocab, sampler = peaked
    grid = one_grid(4000)
    features, keys, h, c = model.start(grid[:1])
    logp, *_ = model.step(np.array([vocab.start_id], np.int32), h, c, features, keys)
    expected = np.exp(logp.numpy()[0].astype(np.float64))
    assert expected.max() > 0.3  # the check below could not tell a uniform sampler from a right one otherwise

    first = [(h.ids[0] if h.ids else vocab.end_id) for h in sampler(grid, seed=7)]
    observed = np.bincount(first, minlength=len(expected)) / len(first)
    assert 0.5 * np.abs(observed - expected).sum() < 0.04  # total variation; sampling noise is about 0.01 here


def test_a_samples_log_probability_is_the_decoders_score_of_it(peaked):
    model, vocab, sampler = peaked
    grid = np.random.default_rng(1).random((6, 49, 1280), dtype=np.float32)
    samples = sampler(grid, seed=3)
    features, keys, h, c = model.start(grid)
    for row, sample in enumerate(samples):
        words = [vocab.start_id, *sample.ids]
        targets = [*sample.ids, vocab.end_id][: MAX_WORDS + 1]  # a caption cut at the longest has no <end>
        state = (h[row : row + 1], c[row : row + 1])
        total = 0.0
        for word, target in zip(words, targets):
            logp, *state, _ = model.step(np.array([word], np.int32), *state, features[row : row + 1], keys[row : row + 1])
            total += float(logp[0, target])
        assert sample.log_prob == pytest.approx(total, abs=1e-3)


def test_samples_never_hold_special_tokens_and_are_reproducible(peaked):
    _, vocab, sampler = peaked
    grid = np.random.default_rng(2).random((200, 49, 1280), dtype=np.float32)
    samples = sampler(grid, seed=11)
    words = [w for s in samples for w in s.ids]
    assert not set(words) & {*NEVER_GENERATED, vocab.end_id}
    assert all(len(s.ids) <= MAX_WORDS + 1 for s in samples)
    assert [s.ids for s in sampler(grid, seed=11)] == [s.ids for s in samples]
    assert [s.ids for s in sampler(grid, seed=12)] != [s.ids for s in samples]
