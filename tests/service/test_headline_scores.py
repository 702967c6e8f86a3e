"""Which recorded val scores `captionbot models` and /status show for a version."""
from __future__ import annotations

from service.model_versions import headline_scores


def scores(bleu4: float, cider: float) -> dict:
    return {"BLEU-4": bleu4, "CIDEr": cider, "images": 1000}


def test_beam_three_is_preferred_to_greedy_and_a_retrained_versions_val_to_both():
    assert headline_scores({"val_greedy": scores(0.20, 0.50), "val_beam3": scores(0.22, 0.55)}) == (0.22, 0.55)
    assert headline_scores({"val_beam3": scores(0.22, 0.55), "val": scores(0.21, 0.52)}) == (0.21, 0.52)


def test_a_bundle_selected_on_another_beam_width_shows_that_beam_rather_than_nothing():
    assert headline_scores({"val_beam5": scores(0.23, 0.56)}) == (0.23, 0.56)
    assert headline_scores({"val_greedy": scores(0.20, 0.50), "val_beam5": scores(0.23, 0.56)}) == (0.23, 0.56)


def test_metrics_without_scores_give_none():
    assert headline_scores({}) == (None, None)
    assert headline_scores({"val_beam3": {"images": 3}}) == (None, None)
