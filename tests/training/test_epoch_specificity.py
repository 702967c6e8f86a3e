"""Every epoch's history record says how specific its val captions are, beside BLEU and CIDEr-D."""
import json

from captioning.search import greedy_search
from captioning.specificity import SPECIFICITY_KEYS, caption_specificity
from tiny_trainer import TRAIN, VAL, tiny_trainer


def test_each_epoch_records_the_specificity_of_its_val_captions(tmp_path):
    trainer = tiny_trainer(epochs=1, learning_rate=1e-2, min_word_count=1)
    result = trainer.fit(TRAIN, VAL, tmp_path / "run", "tiny")
    (record,) = result.history

    names, vocab = sorted(VAL), trainer.vocab
    hyps = greedy_search(trainer.compiled, trainer.grid(names), vocab.start_id, vocab.end_id, trainer.decoder.config.max_words)
    expected = caption_specificity({n: " ".join(vocab.decode(h.ids)) for n, h in zip(names, hyps)}, VAL).to_dict()
    assert {key: record[f"val_{key}"] for key in SPECIFICITY_KEYS} == expected
    assert json.loads((tmp_path / "run" / "history.json").read_text())[0]["val_vocabulary"] == expected["vocabulary"]
    assert json.loads((result.bundle_dir / "config.json").read_text())["metrics"]["val_greedy"]["vocabulary"] == expected["vocabulary"]
