"""Metrics: BLEU and CIDEr-D as the COCO toolkit computes them, on hand-checked cases, and the
fast CIDEr-D reward equal to pycocoevalcap's when both use the same document frequencies."""
import pytest
from pycocoevalcap.cider.cider import Cider

from captioning.metrics import CiderD, score_captions


def test_identical_caption_scores_bleu_one():
    refs = {"1": ["a dog runs on the grass", "a dog runs on the grass"]}
    scores = score_captions(refs, {"1": "a dog runs on the grass"}, use_java=False)
    for n in range(1, 5):
        assert scores[f"BLEU-{n}"] == pytest.approx(1.0, abs=1e-6)
    assert scores["tokenizer"] == "ptb-nltk-treebank"


def test_bleu1_is_clipped_unigram_precision_times_brevity_penalty():
    # hypothesis "the the the the" vs reference "the cat is on the mat": clipped precision 2/4, no brevity penalty
    # (hyp shorter: BP = exp(1 - 6/4)); BLEU-1 = 0.5 * exp(-0.5)
    scores = score_captions({"1": ["the cat is on the mat"]}, {"1": "the the the the"}, use_java=False)
    assert scores["BLEU-1"] == pytest.approx(0.5 * 2.718281828 ** -0.5, rel=1e-3)


def test_punctuation_and_case_do_not_change_scores():
    refs = {"1": ["A dog runs.", "The dog is running!"], "2": ["Two kids, in water."]}
    plain = score_captions(refs, {"1": "a dog runs", "2": "two kids in water"}, use_java=False)
    shouty = score_captions(refs, {"1": "A dog runs!", "2": "Two kids, in water."}, use_java=False)
    assert plain["CIDEr"] == pytest.approx(shouty["CIDEr"])


def test_fast_cider_d_equals_pycocoevalcap_on_the_same_corpus():
    refs = {
        "a": ["a dog runs on grass", "a brown dog runs", "the dog is running outside"],
        "b": ["two kids play in water", "children splash in a pool", "kids swim"],
        "c": ["a man rides a bike", "a cyclist on a road", "man cycling down a street"],
    }
    hyps = {"a": "a dog runs", "b": "kids play in a pool", "c": "a man rides a bike on a road"}
    _, expected = Cider().compute_score(refs, {k: [v] for k, v in hyps.items()})
    fast = CiderD({k: [r.split() for r in v] for k, v in refs.items()})
    got = [fast.score(k, hyps[k].split()) for k in sorted(refs)]
    assert got == pytest.approx(list(expected), rel=1e-6)
