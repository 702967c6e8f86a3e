"""Weight averaging: with `ema_momentum`, each epoch is scored on val with the optimizer's moving
average of the weights and with the raw weights, the better of the two can become the bundle, and
training itself goes on from the raw weights."""
import json

import numpy as np
import tensorflow as tf

from captioning.bundle import WEIGHTS_FILE, load_decoder_weights
from tiny_trainer import TRAIN, VAL, tiny_trainer


def train_steps(trainer, count: int) -> None:
    tokens = np.array([trainer.vocab.encode("a dog runs on the grass")] * 2, np.int32)
    for _ in range(count):
        trainer._train_step(tf.constant([0, 1]), tf.constant(tokens), tf.ones(2))


def test_the_average_is_swapped_in_and_the_raw_weights_come_back():
    trainer = tiny_trainer(ema_momentum=0.9)
    trainer._make_optimizer(1e-2, 20)
    start = [v.numpy() for v in trainer.decoder.trainable_variables]
    train_steps(trainer, 5)
    raw = [v.numpy() for v in trainer.decoder.trainable_variables]
    with trainer.averaged_weights():
        averaged = [v.numpy() for v in trainer.decoder.trainable_variables]
    after = [v.numpy() for v in trainer.decoder.trainable_variables]
    assert all(np.array_equal(a, b) for a, b in zip(raw, after))
    # the average trails the raw weights: it sits between the start and where training got to
    moved = [(np.abs(r - s).sum(), np.abs(a - s).sum()) for s, r, a in zip(start, raw, averaged) if np.abs(r - s).sum() > 0]
    assert moved and all(0 < by_average < by_raw for by_raw, by_average in moved)


def test_without_a_momentum_nothing_is_swapped():
    trainer = tiny_trainer()
    trainer._make_optimizer(1e-2, 20)
    train_steps(trainer, 2)
    raw = [v.numpy() for v in trainer.decoder.trainable_variables]
    assert not trainer.averaging
    with trainer.averaged_weights():
        assert all(np.array_equal(a, v.numpy()) for a, v in zip(raw, trainer.decoder.trainable_variables))


def test_each_stage_has_its_own_momentum():
    trainer = tiny_trainer(ema_momentum=0.99)
    trainer._make_optimizer(1e-2, 20)
    assert trainer.averaging and trainer.optimizer.ema_momentum == 0.99
    trainer._make_optimizer(1e-2, 20, self_critical=True)
    assert not trainer.averaging
    trainer = tiny_trainer(scst_ema_momentum=0.9)
    trainer._make_optimizer(1e-2, 20, self_critical=True)
    assert trainer.averaging and trainer.optimizer.ema_momentum == 0.9


def test_fit_scores_both_and_keeps_the_better_of_the_two(tmp_path):
    trainer = tiny_trainer(epochs=1, ema_momentum=0.5, learning_rate=1e-2, min_word_count=1, keep_epoch_weights=True)
    result = trainer.fit(TRAIN, VAL, tmp_path / "run", "tiny-ema")
    assert sorted(p.name for p in (tmp_path / "run" / "epochs").iterdir()) == ["01-xe-raw.weights.npz", "01-xe.weights.npz"]
    (record,) = result.history
    assert {"val_raw_CIDEr", "val_raw_BLEU-4", "val_CIDEr", "val_BLEU-4"} <= set(record)
    kept = json.loads((result.bundle_dir / "config.json").read_text())["training"]["best_epoch"]["weights"]
    better = "raw" if record["val_raw_CIDEr"] > record["val_CIDEr"] else "average"
    assert kept == better
    assert result.best_scores["CIDEr"] == max(record["val_raw_CIDEr"], record["val_CIDEr"])

    saved = tiny_trainer().decoder
    load_decoder_weights(saved, result.bundle_dir / WEIGHTS_FILE)
    with trainer.averaged_weights():
        averaged = [v.numpy() for v in trainer.decoder.trainable_variables]
    raw = [v.numpy() for v in trainer.decoder.trainable_variables]
    expected, other = (averaged, raw) if kept == "average" else (raw, averaged)
    as_stored = [a.astype(np.float16).astype(np.float32) for a in expected]  # bundles keep float16
    assert all(np.array_equal(a, b.numpy()) for a, b in zip(as_stored, saved.trainable_variables))
    assert not all(np.allclose(a, b.numpy(), atol=1e-3) for a, b in zip(other, saved.trainable_variables))
