"""Self-critical training: the policy-gradient step moves a caption's probability the way its
advantage says, and the SCST stage of `Trainer.fit` runs end to end from cached features."""
import numpy as np
import tensorflow as tf

from captioning.text import Vocabulary
from tiny_trainer import TINY, WORDS, tiny_trainer
from training.train import Trainer


def caption_nll(trainer: Trainer, tokens: np.ndarray) -> float:
    grid = tf.cast(tf.gather(trainer.features, [0]), tf.float32)
    _, nll, _ = trainer.decoder.sequence_loss(grid, tf.constant(tokens), tf.ones(1), training=False)
    return float(nll)


def test_a_positive_advantage_makes_the_caption_more_likely_and_a_negative_one_less():
    for advantage, should_rise in ((1.0, True), (-1.0, False)):
        trainer = tiny_trainer()
        vocab = trainer.vocab
        tokens = np.array([vocab.encode("a dog runs on the grass")], np.int32)
        before = caption_nll(trainer, tokens)
        trainer._make_optimizer(1e-2, 10, self_critical=True)
        for _ in range(3):
            trainer._train_step(tf.constant([0]), tf.constant(tokens), tf.constant([advantage]))
        after = caption_nll(trainer, tokens)
        assert (after < before) == should_rise, (advantage, before, after)


def test_the_self_critical_step_ignores_dropout():
    """Captions are sampled without dropout, so the gradient must be the dropout-free one: two
    identical models given the same step end with identical weights, whatever dropout would draw."""
    weights = []
    for seed in (1, 2):
        trainer = tiny_trainer(seed=seed)  # another seed, other dropout draws
        if weights:
            trainer.decoder.set_weights(start)
        start = trainer.decoder.get_weights()
        vocab = trainer.vocab
        tokens = np.array([vocab.encode("a red ball")], np.int32)
        trainer._make_optimizer(1e-2, 10, self_critical=True)
        trainer._train_step(tf.constant([0]), tf.constant(tokens), tf.constant([1.0]))
        weights.append(trainer.decoder.get_weights())
    assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(*weights))


def test_fit_runs_cross_entropy_then_self_critical_epochs(tmp_path):
    trainer = tiny_trainer(epochs=2, scst_epochs=1, scst_images_per_batch=3, scst_samples=2, min_word_count=1)
    train = {f"img{i}": ["a dog runs on the grass", "a dog on grass"] if i % 2 else ["a man sits", "a red ball"] for i in range(4)}
    val = {f"img{i}": train[f"img{i - 4}"] for i in (4, 5)}
    result = trainer.fit(train, val, tmp_path / "run", "tiny-scst")
    stages = [(r["stage"], r["epoch"]) for r in result.history]
    assert stages == [("xe", 1), ("xe", 2), ("scst", 3)]
    reward = -result.history[-1]["loss"]
    assert 0.0 <= reward <= 10.0  # CIDEr-D of the sampled captions
    assert (result.bundle_dir / "decoder.weights.npz").exists()


def test_the_policy_gradient_scores_captions_with_the_samplers_distribution():
    """The NLL the self-critical step uses is −log p under the distribution sampled from (which
    never produces <unk>), word for word as the step-by-step decoder computes it."""
    from captioning.search import CompiledDecoder, never_generated_bias

    trainer = tiny_trainer()
    vocab, decoder = trainer.vocab, trainer.decoder
    tokens = np.array([vocab.encode("a dog runs on the grass")], np.int32)
    grid = tf.cast(tf.gather(trainer.features, [0]), tf.float32)
    bias = tf.constant(never_generated_bias(decoder.config.vocab_size))
    _, nll, _ = decoder.sequence_loss(grid, tf.constant(tokens), tf.ones(1), logit_bias=bias)

    compiled = CompiledDecoder(decoder)
    features, keys, h, c = compiled.start(grid)
    log_p = 0.0
    for word, target in zip(tokens[0, :-1], tokens[0, 1:]):
        logp, h, c, _ = compiled.step(np.array([word], np.int32), h, c, features, keys)
        log_p += float(logp[0, target])
    np.testing.assert_allclose(float(nll), -log_p / (tokens.shape[1] - 1), rtol=1e-4)
    _, unbiased_nll, _ = decoder.sequence_loss(grid, tf.constant(tokens), tf.ones(1))
    assert float(unbiased_nll) > float(nll)  # without the bias, <unk> & co. take probability too


def test_label_smoothing_changes_cross_entropy_steps_and_not_self_critical_ones():
    tokens = tf.constant(np.array([Vocabulary(WORDS).encode("a red ball")], np.int32))
    for self_critical, should_differ in ((False, True), (True, False)):
        weights = []
        for epsilon in (0.0, 0.3):
            trainer = tiny_trainer(label_smoothing=epsilon, decoder={**TINY, "dropout": 0.0, "embed_dropout": 0.0})
            if weights:
                trainer.decoder.set_weights(start)
            start = trainer.decoder.get_weights()
            trainer._make_optimizer(1e-2, 10, self_critical=self_critical)
            trainer._train_step(tf.constant([0]), tokens, tf.constant([1.0]))
            weights.append(trainer.decoder.get_weights())
        same = all(np.allclose(a, b, atol=1e-6) for a, b in zip(*weights))
        assert same != should_differ, (self_critical, same)


def test_self_critical_samples_are_no_longer_than_the_captions_training_keeps():
    """The sampler stops where cross-entropy cuts captions (max_words, here 3 words, + one step for
    <end>), not at the decoder's own longer limit (8), so rewards are given to the words trained on."""
    trainer = tiny_trainer(max_words=3)
    grid = tf.cast(tf.gather(trainer.features, np.repeat(np.arange(6), 20)), tf.float32)
    lengths = [len(s.ids) for s in trainer.sampler(grid, seed=0)]
    assert max(lengths) == 4  # an untrained model rarely ends early: many samples reach the cap


def test_a_self_critical_rate_below_min_learning_rate_stays_below_it():
    """A retraining's self-critical rate (5e-5) sits below its warm-up's floor (3e-4): the schedule
    must decay towards the floor, never climb to it (it once rose 30-fold and wrecked val)."""
    trainer = tiny_trainer(learning_rate=3e-3, min_learning_rate=3e-4)
    trainer._make_optimizer(5e-5, 100, self_critical=True)
    rates = []
    for step in (0, 50, 100):
        trainer.optimizer.iterations.assign(step)
        rates.append(float(trainer.optimizer.learning_rate))
    np.testing.assert_allclose(rates, [5e-5] * 3, rtol=1e-5)
    trainer._make_optimizer(3e-3, 100)  # cross-entropy still decays to its floor
    trainer.optimizer.iterations.assign(100)
    np.testing.assert_allclose(float(trainer.optimizer.learning_rate), 3e-4, rtol=1e-4)


def test_with_a_gate_the_kept_epoch_is_the_best_that_passes_it_not_the_best_overall(tmp_path):
    """A retraining's gate passes only the first epoch: the bundle is that epoch's weights, even
    though later epochs (more training on the same captions) score higher."""
    from captioning.bundle import load_decoder

    trainer = tiny_trainer(epochs=3, min_word_count=1, learning_rate=3e-2)
    train = {f"img{i}": ["a dog runs on the grass"] if i % 2 else ["a man sits on a red ball"] for i in range(4)}
    val = {f"img{i}": train[f"img{i - 4}"] for i in (4, 5)}
    calls: list[dict[str, str]] = []

    def first_epoch_only(captions: dict[str, str]) -> tuple[bool, dict[str, float]]:
        calls.append(captions)
        return len(calls) == 1, {"BLEU-4": 0.0, "CIDEr": float(len(calls))}

    result = trainer.fit(train, val, tmp_path / "run", "tiny-gate", gate=first_epoch_only)
    assert [r["val_passes_gate"] for r in result.history] == [True, False, False]
    assert [r["val_gate_CIDEr"] for r in result.history] == [1.0, 2.0, 3.0]
    config, _, _ = load_decoder(result.bundle_dir)
    assert config.training["best_epoch"]["epoch"] == 1
    assert result.best_scores["passes_gate"] is True
