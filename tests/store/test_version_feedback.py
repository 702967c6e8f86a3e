"""Per-version feedback counts, corrected captions and the rating history, on PostgreSQL and SQLite."""
from __future__ import annotations

from feedback_seed import DAY_1, DAY_2, V1_TEXTS, V2_CORRECTIONS, V2_TEXT, seed_feedback

from store.db import session_scope
from store.version_feedback import corrected_captions, rating_history, version_feedback_counts


def test_counts_per_version_add_up_served_captions_ratings_and_corrected_captions(any_session_factory):
    with session_scope(any_session_factory) as session:
        seed_feedback(session)
    with session_scope(any_session_factory) as session:
        counts = {c.version: c for c in version_feedback_counts(session)}

    assert set(counts) == {"v1-old", "v2-new", "v0-unrated"}
    v1, v2, v0 = counts["v1-old"], counts["v2-new"], counts["v0-unrated"]
    assert (v1.served, v1.up, v1.down, v1.corrected) == (10, 8, 2, 2), "the undelivered caption is not served"
    assert (v2.served, v2.up, v2.down, v2.corrected) == (4, 1, 3, 1), "two corrections of one caption: one corrected"
    assert (v0.served, v0.up, v0.down, v0.corrected) == (2, 0, 0, 0)
    assert v1.first_served_at == DAY_1 and v2.first_served_at == DAY_2


def test_versions_come_oldest_first_by_their_first_served_caption(any_session_factory):
    with session_scope(any_session_factory) as session:
        seed_feedback(session)
        assert [c.version for c in version_feedback_counts(session)] == ["v0-unrated", "v1-old", "v2-new"]


def test_corrected_captions_group_every_correction_under_its_caption(any_session_factory):
    with session_scope(any_session_factory) as session:
        seed_feedback(session)
        corrected = corrected_captions(session)

        assert set(corrected) == {"v1-old", "v2-new"}
        assert [(c.text, c.corrections) for c in corrected["v1-old"]] == [(text, (text,)) for text in V1_TEXTS]
        assert [(c.text, c.corrections) for c in corrected["v2-new"]] == [(V2_TEXT, V2_CORRECTIONS)]


def test_rating_history_dates_each_rating_by_when_its_caption_was_served(any_session_factory):
    with session_scope(any_session_factory) as session:
        seed_feedback(session)
        history = rating_history(session)

    assert len(history) == 14
    assert [r.served_at for r in history] == sorted(r.served_at for r in history)
    assert sum(1 for r in history if r.version == "v1-old" and r.served_at == DAY_1 and r.value == "up") == 6
    assert {r.served_at for r in history if r.version == "v2-new"} == {DAY_2}
