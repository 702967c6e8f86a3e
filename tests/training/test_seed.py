"""`--seed` makes training repeatable: weight init, dropout and the mirror draws follow it."""
import numpy as np
import tensorflow as tf
from tiny_trainer import tiny_trainer


def first_step(seed: int) -> tuple[list[np.ndarray], float]:
    """Initial weights and the loss of one cross-entropy step (dropout and mirror draws on)."""
    trainer = tiny_trainer(mirror=True, seed=seed)
    weights = [w.copy() for w in trainer.decoder.get_weights()]
    trainer._make_optimizer(1e-3, 10)
    tokens = tf.constant([[1, 4, 5, 6, 2, 0], [1, 4, 7, 2, 0, 0], [1, 4, 5, 8, 9, 2], [1, 10, 11, 2, 0, 0]], tf.int32)
    nll, _ = trainer._train_step(tf.range(4), tokens, tf.ones((4,)))
    return weights, float(nll)


def test_the_same_seed_gives_the_same_weights_and_the_same_first_step():
    weights, loss = first_step(seed=3)
    again, loss_again = first_step(seed=3)
    other, loss_other = first_step(seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(weights, again))
    assert loss == loss_again
    assert not all(np.array_equal(a, b) for a, b in zip(weights, other))
    assert loss != loss_other
