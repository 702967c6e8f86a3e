"""Judging versions by feedback: the Wilson interval against hand-computed values, per-version
shares and correction rates on a seeded PostgreSQL store, BLEU-4 / CIDEr-D against corrections,
and the share over time."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from feedback_seed import DAY_1, DAY_2, seed_feedback

from service.feedback_evaluation import (
    evaluate_versions,
    format_share,
    natural_period,
    share_by_period,
    wilson_interval,
)
from store.db import session_scope
from store.version_feedback import RatedCaption, rating_history
from worker.version_report import evaluate_with_scores, score_against_corrections

# Reference values worked by hand from the Wilson formula with z = 1.96:
#   centre = (p + z²/2n) / (1 + z²/n),  half width = z / (1 + z²/n) · √(p(1−p)/n + z²/4n²)
#   8 of 10: p = 0.8, z²/n = 0.38416 → centre 0.99208 / 1.38416 = 0.71674, half 1.96 · 0.16001 / 1.38416 = 0.22658
#   1 of 4:  p = 0.25, z²/n = 0.9604 → centre 0.73010 / 1.9604 = 0.37242, half 1.96 · 0.32696 / 1.9604 = 0.32689
#   0 of 10: centre = half = 0.19208 / 1.38416 = 0.13877;  10 of 10 mirrors it
HAND_COMPUTED = [
    ((8, 10), (0.4902, 0.9433)),
    ((1, 4), (0.0456, 0.6994)),
    ((0, 10), (0.0, 0.2775)),
    ((10, 10), (0.7225, 1.0)),
]


@pytest.mark.parametrize(("counts", "expected"), HAND_COMPUTED)
def test_wilson_interval_matches_hand_computed_values(counts, expected):
    low, high = wilson_interval(*counts)
    assert (low, high) == pytest.approx(expected, abs=5e-5)


def test_wilson_interval_is_none_without_ratings_and_refuses_impossible_counts():
    assert wilson_interval(0, 0) is None
    with pytest.raises(ValueError):
        wilson_interval(5, 4)


def test_a_wider_z_gives_a_wider_interval():
    narrow, wide = wilson_interval(8, 10, z=1.0), wilson_interval(8, 10, z=2.576)
    assert wide[0] < narrow[0] and narrow[1] < wide[1]


def test_each_version_gets_its_counts_share_interval_and_correction_rate(session_factory):
    with session_scope(session_factory) as session:
        seed_feedback(session)
        evaluations = {e.version: e for e in evaluate_versions(session)}

    v1, v2, v0 = evaluations["v1-old"], evaluations["v2-new"], evaluations["v0-unrated"]
    assert (v1.served, v1.up, v1.down, v1.rated) == (10, 8, 2, 10)
    assert v1.up_share == 0.8 and v1.up_share_interval == pytest.approx((0.4902, 0.9433), abs=5e-5)
    assert v1.correction_rate == 0.2
    assert (v2.served, v2.up, v2.down) == (4, 1, 3)
    assert v2.up_share == 0.25 and v2.up_share_interval == pytest.approx((0.0456, 0.6994), abs=5e-5)
    assert v2.correction_rate == 0.25
    assert v0.up_share is None and v0.up_share_interval is None and v0.correction_rate == 0.0
    assert format_share(v1) == "80% [49–94%]" and format_share(v0) == "–"
    assert all(e.bleu4 is None and e.cider is None for e in evaluations.values()), "no scorer, no caption metrics"


def test_bleu4_is_one_for_captions_identical_to_their_corrections_and_zero_when_no_word_is_shared(session_factory):
    with session_scope(session_factory) as session:
        seed_feedback(session)
        evaluations = {e.version: e for e in evaluate_with_scores(session, use_java=False)}

    assert evaluations["v1-old"].bleu4 == pytest.approx(1.0, abs=1e-6)
    assert evaluations["v2-new"].bleu4 == pytest.approx(0.0, abs=1e-6)
    assert evaluations["v0-unrated"].bleu4 is None and evaluations["v0-unrated"].cider is None, "no corrections"
    assert evaluations["v1-old"].cider > 0
    assert evaluations["v2-new"].cider is None, "one corrected caption: CIDEr-D's document frequencies say nothing"


def test_scores_against_corrections_take_every_correction_of_a_caption_as_a_reference():
    from store.version_feedback import CorrectedCaption

    caption = CorrectedCaption(1, "a man rides a red bike", ("a woman swims in a lake", "a man rides a red bike"))
    assert score_against_corrections([caption], use_java=False)["BLEU-4"] == pytest.approx(1.0, abs=1e-6)
    assert score_against_corrections([], use_java=False) == {"BLEU-4": None, "CIDEr": None}


def test_share_over_time_counts_per_day_or_per_week_and_version(session_factory):
    with session_scope(session_factory) as session:
        seed_feedback(session)
        history = rating_history(session)

    by_day = share_by_period(history, "day")
    day_1, day_2 = DAY_1.replace(hour=0, minute=0), DAY_2.replace(hour=0, minute=0)
    assert by_day["v1-old"] == [(day_1, 6, 6), (day_2, 2, 4)]
    assert by_day["v2-new"] == [(day_2, 1, 4)]
    assert share_by_period(history, "week")["v1-old"] == [(day_1, 8, 10)], "DAY_1 is that week's Monday"


def test_ratings_spanning_more_than_two_months_are_shown_per_week():
    rating = lambda day: RatedCaption("v", datetime(2026, 1, day, tzinfo=timezone.utc), "up")  # noqa: E731
    assert natural_period([rating(1), rating(31)]) == "day"
    assert natural_period([rating(1), RatedCaption("v", datetime(2026, 4, 1, tzinfo=timezone.utc), "up")]) == "week"
