"""Feedback as training data: corrections and 👍 captions as weighted references, a stable held-back
tenth of the corrected photos, new words, and one feature array for Flickr8k and feedback rows."""
import numpy as np

from captioning.text import Vocabulary
from store.feedback import FeedbackExample
from training.feedback_data import build_feedback_data, combined_cache, heldout_photos
from training.features import FeatureCache


def example(tmp_path, sha: str, text: str, source: str, caption_id: int = 1) -> FeedbackExample:
    path = tmp_path / f"{sha}.jpg"
    path.write_bytes(b"\xff\xd8\xff")
    return FeedbackExample(str(path), sha, text, source, caption_id)


def test_corrections_and_upvotes_become_weighted_references_and_a_tenth_of_corrected_photos_is_held_back(tmp_path):
    examples = [example(tmp_path, f"c{i:02d}", f"a scarlet tile number {i}", "correction") for i in range(20)]
    examples += [example(tmp_path, "u1", "a dog runs", "upvote"), example(tmp_path, "c05", "a red thing", "upvote")]
    gone = FeedbackExample(str(tmp_path / "deleted.jpg"), "gone", "a cat", "correction", 9)

    data = build_feedback_data(examples + [gone], correction_weight=2.0, upvote_weight=0.25, holdout_fraction=0.1)

    assert len(data.heldout) == 2 and all(name.startswith("c") for name in data.heldout)
    trained_corrections = {n for n in data.train if n.endswith("#correction")}
    assert len(trained_corrections) == 18 and {data.weights[n] for n in trained_corrections} == {2.0}
    assert data.train["u1#upvote"] == ["a dog runs"] and data.weights["u1#upvote"] == 0.25
    if "c05" not in data.heldout:  # a held-back photo gives nothing to training, not even its 👍
        assert data.train["c05#upvote"] == ["a red thing"] and data.photo_of["c05#upvote"] == "c05"
    assert data.counts["missing_photos"] == 1 and "gone" not in data.photos
    assert data.counts["corrections"] == 20 and data.counts["upvoted_captions"] == 2
    # the same photos are held back on every run, and as the set grows most stay held back
    assert heldout_photos([f"c{i:02d}" for i in range(20)], 0.1) == set(data.heldout)


def test_new_words_come_from_training_corrections_seen_often_enough():
    data = build_feedback_data([])
    data.train = {"a#correction": ["a scarlet tile", "a scarlet box"], "b#correction": ["snow"], "c#upvote": ["a zebra zebra"]}
    vocab = Vocabulary("a tile box".split())
    assert data.new_words(vocab, min_count=2) == ["scarlet"]
    assert data.new_words(vocab, min_count=1) == ["scarlet", "snow"]


def test_combined_cache_gives_each_feedback_example_its_photos_features():
    flickr = FeatureCache(["f1", "f2", "f3"], np.arange(3 * 2 * 4, dtype=np.float16).reshape(3, 2, 4))
    feedback = FeatureCache(["p1", "p2"], -np.arange(2 * 2 * 4, dtype=np.float16).reshape(2, 2, 4) - 1)

    cache = combined_cache(flickr, ["f3", "f1"], feedback, {"p2#correction": "p2", "p2#upvote": "p2", "p1#correction": "p1"})

    assert cache.names[:2] == ["f3", "f1"] and cache.grid.dtype == np.float16
    np.testing.assert_array_equal(cache.grid[cache.rows(["f3", "f1"])], flickr.grid[[2, 0]])
    np.testing.assert_array_equal(cache.grid[cache.rows(["p2#upvote", "p2#correction", "p2"])], feedback.grid[[1, 1, 1]])
    np.testing.assert_array_equal(cache.grid[cache.rows(["p1#correction"])], feedback.grid[[0]])
    assert combined_cache(flickr, ["f2"], None, {}).names == ["f2"]
