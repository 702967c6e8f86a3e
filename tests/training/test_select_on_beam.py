"""Selecting epochs on val by beam search: each epoch is scored with the search the bundle will run
(its beam width, α and blocking), and the bundle records which search chose it."""
import json

import numpy as np

from captioning.metrics import score_captions
from captioning.search import CompiledBeamSearch, CompiledDecoder
from tiny_trainer import TRAIN, VAL, tiny_trainer


def test_epochs_are_scored_by_the_bundles_beam_search(tmp_path):
    trainer = tiny_trainer(epochs=1, select_beam=2, length_penalty=1.5, learning_rate=1e-2, min_word_count=1)
    result = trainer.fit(TRAIN, VAL, tmp_path / "run", "tiny-beam")
    (record,) = result.history
    assert record["val_search"] == "beam2"
    config = json.loads((result.bundle_dir / "config.json").read_text())
    assert set(config["metrics"]) == {"val_beam2"} and config["metrics"]["val_beam2"]["CIDEr"] == record["val_CIDEr"]

    vocab, names = trainer.vocab, sorted(VAL)
    search = CompiledBeamSearch(CompiledDecoder(trainer.decoder), vocab.start_id, vocab.end_id, trainer.decoder.config.max_words, 2)
    hyps = search(trainer.grid(names), 1.5, vocab.content_words())
    expected = score_captions(VAL, {n: " ".join(vocab.decode(h.ids)) for n, h in zip(names, hyps)})
    np.testing.assert_allclose(record["val_CIDEr"], expected["CIDEr"])
    np.testing.assert_allclose(record["val_BLEU-4"], expected["BLEU-4"])


def test_greedy_stays_the_default():
    trainer = tiny_trainer(min_word_count=1)
    assert trainer.val_search == "greedy"
    scores, captions = trainer.evaluate(VAL)
    assert set(captions) == set(VAL) and "CIDEr" in scores
