"""Self-critical training on feedback: a correction is a reference of its photo in the CIDEr-D
reward, a 👍 caption a weighted one, 👎 captions never; feedback is drawn `repeats` times an epoch;
the warm-up replays a fixed sample of Flickr8k; an image's weight scales its policy-gradient step."""
import numpy as np

from captioning.text import tokenize
from store.feedback import FeedbackExample
from tiny_trainer import TINY, TRAIN, VAL, tiny_trainer
from training.feedback_data import build_feedback_data
from training.self_critical import SelfCriticalData, with_feedback

FLICKR = {
    "dog": ["a dog runs on the grass", "a brown dog runs through a field", "a dog plays outside"],
    "man": ["a man rides a bike", "a man on a bicycle", "a person riding a bike down the road"],
    "kids": ["two children play in the water", "kids splash in a pool", "children swim"],
}


def feedback(tmp_path, rows: list[tuple[str, str, str]]):
    examples = []
    for i, (sha, text, source) in enumerate(rows):
        path = tmp_path / f"{sha}.jpg"
        path.write_bytes(b"\xff\xd8\xff")
        examples.append(FeedbackExample(str(path), sha, text, source, i))
    return build_feedback_data(examples, correction_weight=1.0, upvote_weight=0.5, holdout_fraction=0.0)


def test_a_correction_rewards_its_phrasing_on_its_photo_and_an_upvote_counts_at_its_weight(tmp_path):
    data = feedback(tmp_path, [("s1", "a pencil sketch of a dog", "correction"), ("s2", "a pencil sketch of a man", "correction"),
                               ("u1", "a dog runs on the grass", "upvote")])
    scst = with_feedback(FLICKR, data, repeats=3)
    reward = scst.reward()

    taught = reward.score("s1#correction", tokenize("a pencil sketch of a dog"))
    generic = reward.score("s1#correction", tokenize("a dog runs on the grass"))
    assert taught > 5 * max(generic, 0.1)
    # the upvoted caption is a reference of its photo, its step counts half, and Flickr8k photos are unchanged
    assert reward.score("u1#upvote", tokenize("a dog runs on the grass")) > reward.score("u1#upvote", tokenize("two children swim"))
    assert list(scst.step_weights(["u1#upvote", "s1#correction", "dog"])) == [0.5, 1.0, 1.0]
    assert reward.score("dog", tokenize("a dog runs on the grass")) > reward.score("dog", tokenize("a man rides a bike"))


def test_document_frequencies_count_corrections_and_not_upvoted_captions(tmp_path):
    data = feedback(tmp_path, [("s1", "a pencil sketch of a dog", "correction"), ("u1", "a zebra grazes", "upvote")])
    reward = with_feedback(FLICKR, data, repeats=1).reward()

    frequency = reward.document_frequency
    assert frequency[("pencil",)] == 1 and frequency[("zebra",)] == 0 and frequency[("dog",)] == 2
    assert np.isclose(reward.log_corpus_size, np.log(len(FLICKR) + 1))  # three Flickr8k photos + one correction


def test_feedback_is_drawn_repeats_times_an_epoch_and_downvoted_captions_never(tmp_path):
    data = feedback(tmp_path, [("s1", "a pencil sketch of a dog", "correction"), ("u1", "a dog runs", "upvote")])
    scst = with_feedback(FLICKR, data, repeats=4)

    order = scst.epoch_order(np.random.default_rng(0))
    assert sorted(set(order)) == sorted([*FLICKR, "s1#correction", "u1#upvote"])
    assert order.count("s1#correction") == 4 and order.count("u1#upvote") == 4 and order.count("dog") == 1
    assert scst.draws_per_epoch == len(order) == 3 + 8


def test_warmup_replays_a_fixed_sample_of_flickr8k_beside_the_feedback_weighted_by_repeats(tmp_path):
    from training.retrain import replay_sample, warmup_data

    data = feedback(tmp_path, [("s1", "a pencil sketch of a dog", "correction"), ("u1", "a dog runs", "upvote")])
    train = {f"img{i}": ["a dog", "a brown dog"] for i in range(50)}

    replay = replay_sample(train, 10)
    assert replay == replay_sample(train, 10) and len(replay) == 10 and replay_sample(train, 99) == sorted(train)
    warmup, weights = warmup_data(train, replay, data, repeats=3)
    assert sorted(n for n in warmup if n.startswith("img")) == replay and warmup[replay[0]] == ["a dog", "a brown dog"]
    assert warmup["s1#correction"] == ["a pencil sketch of a dog"]
    assert weights == {"s1#correction": 3.0, "u1#upvote": 1.5}
    # with the active model's captions, the replayed photos are taught what the model already says
    own, _ = warmup_data(train, replay, data, repeats=3, own_captions={n: "a dog sits" for n in replay})
    assert {tuple(own[n]) for n in replay} == {("a dog sits",)} and own["s1#correction"] == ["a pencil sketch of a dog"]


def test_an_image_weighted_zero_gives_no_self_critical_step_and_weight_one_does(tmp_path):
    moved = {}
    for weight in (0.0, 1.0):
        trainer = tiny_trainer(epochs=0, scst_epochs=1, scst_images_per_batch=4, scst_samples=3, scst_learning_rate=1e-2, min_word_count=1)
        before = [w.copy() for w in trainer.decoder.get_weights()]
        scst = SelfCriticalData(dict(TRAIN), weights=dict.fromkeys(TRAIN, weight))
        trainer.fit(TRAIN, VAL, tmp_path / f"run{weight}", "tiny", self_critical=scst)
        moved[weight] = max(float(np.abs(a - b).max()) for a, b in zip(before, trainer.decoder.get_weights()))
    assert moved[0.0] == 0.0 and moved[1.0] > 1e-4, moved


def test_fit_trains_self_critical_epochs_on_their_own_data(tmp_path):
    """Cross-entropy on `train`, self-critical on other images: the epoch draws those images."""
    trainer = tiny_trainer(epochs=1, scst_epochs=1, scst_images_per_batch=2, scst_samples=2, min_word_count=1)
    drawn = []
    original = trainer.self_critical_rows

    def recording_rows(names, rng):
        drawn.extend(names)
        return original(names, rng)

    trainer.self_critical_rows = recording_rows
    scst = SelfCriticalData({"img0": TRAIN["img0"]}, repeats={"img0": 3})
    result = trainer.fit(TRAIN, VAL, tmp_path / "run", "tiny", self_critical=scst)
    assert [r["stage"] for r in result.history] == ["xe", "scst"]
    assert drawn == ["img0"] * 3


def test_a_new_word_warmup_moves_only_those_words_rows_and_output_units():
    trainer = tiny_trainer(xe_only_words=[5], learning_rate=1e-2)
    before = {v.path: v.numpy().copy() for v in trainer.decoder.trainable_variables}
    trainer._make_optimizer(1e-2, 10)
    tokens = np.array([trainer.vocab.encode("a dog runs on the grass")], np.int32)
    for _ in range(3):
        trainer._train_step(np.array([0]), tokens, np.ones(1, np.float32))
    after = {v.path: v.numpy() for v in trainer.decoder.trainable_variables}

    changed = {path for path in before if not np.array_equal(before[path], after[path])}
    assert changed == {"embedding/embeddings", "out_vocab/kernel", "out_vocab/bias"}
    embedding = after["embedding/embeddings"] != before["embedding/embeddings"]
    kernel = after["out_vocab/kernel"] != before["out_vocab/kernel"]
    assert set(np.flatnonzero(embedding.any(axis=1))) <= {5} and set(np.flatnonzero(kernel.any(axis=0))) == {5}
    assert set(np.flatnonzero(after["out_vocab/bias"] != before["out_vocab/bias"])) == {5}


def test_a_new_word_warmup_moves_only_those_words_image_terms():
    """With image words, the warm-up also trains the image terms of the words it trains, not of
    earlier image words."""
    trainer = tiny_trainer(xe_only_words=[5], learning_rate=1e-2, decoder={**TINY, "image_word_ids": [6, 5]})
    kernel = next(v for v in trainer.decoder.trainable_variables if v.path == "image_words/kernel")
    trainer._make_optimizer(1e-2, 10)
    tokens = np.array([trainer.vocab.encode("a dog runs on the grass")], np.int32)
    for _ in range(3):
        trainer._train_step(np.array([0]), tokens, np.ones(1, np.float32))
    moved = np.flatnonzero((kernel.numpy() != 0).any(axis=0))
    assert list(moved) == [1]  # word 5's column; word 6's stays at zero
