"""The new words' bias offset: tried in turn on the real decoder's output bias, and the one kept is
the best that passes the promotion rule, left in the decoder."""
from types import SimpleNamespace

import numpy as np

from tiny_trainer import tiny_trainer
from training.new_word_bias import BIAS_VARIABLE, choose_offset


def test_the_offset_kept_is_the_best_one_that_passes_the_gate_and_stays_in_the_decoder():
    trainer = tiny_trainer()
    word = trainer.vocab.index["ball"]
    bias = next(v for v in trainer.decoder.weights if v.path == BIAS_VARIABLE)
    start = bias.numpy().copy()
    captioner = SimpleNamespace(decoder=trainer.decoder)

    def caption(model) -> dict[str, str]:
        """A model that says the new word where its bias lets it: the corrected kind of photo needs
        less of it than an ordinary val photo, where saying it is wrong."""
        shift = float(bias.numpy()[word] - start[word])
        return {
            "sketch": "a red ball" if shift > -1.5 else "a man sits",
            "val1": "a red ball" if shift > -0.75 else "a man sits",
            "val2": "a dog runs on the grass",
        }

    references = {"sketch": ["a red ball"], "val1": ["a man sits"], "val2": ["a dog runs on the grass"]}

    def gate(captions: dict[str, str]) -> tuple[bool, dict[str, float]]:
        return captions["val1"] == "a man sits", {}

    offset, trials = choose_offset(captioner, [word], (0.0, -1.0, -2.0), caption, references, gate)
    assert [t.passes_gate for t in trials] == [False, True, True]
    assert trials[1].selection_cider > trials[2].selection_cider
    assert offset == -1.0
    after = bias.numpy()
    assert after[word] == np.float32(start[word] - 1.0)
    np.testing.assert_array_equal(np.delete(after, word), np.delete(start, word))
