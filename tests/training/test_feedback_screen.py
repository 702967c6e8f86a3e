"""Feedback that cannot poison the model: what the store holds (real PostgreSQL) is screened before a
retraining learns from it; one user's volume is capped, junk and repeats are left out, an excluded
user counts for nothing, and every exclusion is counted by its reason."""
from __future__ import annotations

import itertools
from pathlib import Path

from captioning.text import Vocabulary
from store.db import session_scope
from store.feedback import feedback_examples, set_training_excluded
from store.queries import add_correction, create_request, record_caption, record_media, set_rating
from training.feedback_data import CORRECTION_SUFFIX, build_feedback_data
from training.feedback_screen import EXCLUSION_REASONS, FeedbackRules, screen_feedback

COLOURS = "black white brown red blue green yellow grey pink orange".split()
ANIMALS = "dog cat horse bird cow sheep duck goat pig fox".split()
PLACES = "grass snow water sand road".split()
VOCABULARY = Vocabulary(["a", "on", "the", "runs", *COLOURS, *ANIMALS, *PLACES])
_messages = itertools.count(1)


def photo_with_caption(session, tmp_path: Path, sender: int, name: str) -> int:
    """A photo `sender` sent, kept in the media store, and its caption's id."""
    path = tmp_path / f"{name}.jpg"
    path.write_bytes(b"\xff\xd8\xff" + name.encode())
    message = next(_messages)
    request = create_request(session, user_id=sender, chat_id=sender, message_id=message, file_id=f"f{message}",
                             file_unique_id=f"u{message}", file_size=3)
    record_media(session, request.id, media_path=str(path), media_sha256=name)
    return record_caption(session, request.id, text="a dog runs", model_version="v1", beam=3, latency_ms=1.0).id


def screened(session_factory, rules: FeedbackRules):
    with session_scope(session_factory) as session:
        examples = feedback_examples(session)
    kept, excluded = screen_feedback(examples, rules)
    return build_feedback_data(kept, holdout_fraction=0.0), excluded


def test_a_user_who_sends_500_corrections_contributes_only_their_oldest_up_to_the_cap(session_factory, tmp_path):
    texts = [f"a {c} {a} on the {p}" for c, a, p in itertools.product(COLOURS, ANIMALS, PLACES)]
    assert len(set(texts)) == 500
    with session_scope(session_factory) as session:
        for i, text in enumerate(texts):
            add_correction(session, photo_with_caption(session, tmp_path, 1, f"flood{i:03d}"), 666, text)
        for i in range(3):
            add_correction(session, photo_with_caption(session, tmp_path, 2, f"other{i}"), 2, texts[i])

    data, excluded = screened(session_factory, FeedbackRules(VOCABULARY, max_corrections_per_user=50))

    trained = {name: captions for name, captions in data.train.items() if name.endswith(CORRECTION_SUFFIX)}
    flood = sorted(name for name in trained if name.startswith("flood"))
    assert flood == [f"flood{i:03d}{CORRECTION_SUFFIX}" for i in range(50)], "the oldest 50, every run"
    assert [trained[f"other{i}{CORRECTION_SUFFIX}"] for i in range(3)] == [[t] for t in texts[:3]]
    assert data.counts["corrections"] == 53
    assert excluded == {**dict.fromkeys(EXCLUSION_REASONS, 0), "over_user_cap": 450}


def test_each_kind_of_unfit_feedback_stays_stored_but_is_left_out_and_counted_by_its_reason(session_factory, tmp_path):
    with session_scope(session_factory) as session:
        fine = photo_with_caption(session, tmp_path, 1, "fine")
        add_correction(session, fine, 10, "a brown dog on the grass")  # kept
        add_correction(session, fine, 11, "A brown dog, on the GRASS!")  # duplicate: same photo, same words
        add_correction(session, photo_with_caption(session, tmp_path, 1, "pasted"), 10, "a brown dog on the grass")  # duplicate: same user, another photo
        add_correction(session, photo_with_caption(session, tmp_path, 1, "empty"), 10, "123 !!! 🐶")  # empty
        add_correction(session, photo_with_caption(session, tmp_path, 1, "long"), 10, " ".join(["a dog runs"] * 11))  # too long: 33 words
        add_correction(session, photo_with_caption(session, tmp_path, 1, "gibberish"), 10, "a qwzx vbnm plok")  # 3 of 4 unknown
        add_correction(session, photo_with_caption(session, tmp_path, 1, "new-word"), 10, "a scarlet fox on snow")  # 1 of 5 unknown: kept
        for i in range(3):  # a fourth correction of user 12 is over the cap of 3
            add_correction(session, photo_with_caption(session, tmp_path, 1, f"cap{i}"), 12, f"a {COLOURS[i]} cat")
        add_correction(session, photo_with_caption(session, tmp_path, 1, "cap3"), 12, "a pink cat")
        spammed = photo_with_caption(session, tmp_path, 1, "spammed")
        add_correction(session, spammed, 13, "a red cow")  # excluded user
        set_rating(session, spammed, 13, "up")  # excluded user's lone 👍
        liked = photo_with_caption(session, tmp_path, 1, "liked")
        set_rating(session, liked, 14, "up")  # kept
    with session_scope(session_factory) as session:
        assert set_training_excluded(session, 13, True)

    data, excluded = screened(session_factory, FeedbackRules(VOCABULARY, max_words=30, max_corrections_per_user=3))

    assert excluded == {"excluded_user": 2, "empty": 1, "too_long": 1, "out_of_vocabulary": 1, "duplicate": 2,
                        "over_user_cap": 1}
    assert sorted(data.train) == sorted([f"{n}{CORRECTION_SUFFIX}" for n in ("fine", "new-word", "cap0", "cap1", "cap2")]
                                        + ["liked#upvote"])
    assert data.train[f"fine{CORRECTION_SUFFIX}"] == ["a brown dog on the grass"]
    with session_scope(session_factory) as session:
        assert len(feedback_examples(session)) == 14, "nothing was deleted from the store"


def test_include_again_brings_an_excluded_users_corrections_back(session_factory, tmp_path):
    with session_scope(session_factory) as session:
        add_correction(session, photo_with_caption(session, tmp_path, 1, "back"), 20, "a grey horse on the road")
        set_training_excluded(session, 20, True)
    rules = FeedbackRules(VOCABULARY)
    assert screened(session_factory, rules)[0].train == {}
    with session_scope(session_factory) as session:
        set_training_excluded(session, 20, False)
    assert screened(session_factory, rules)[0].train == {f"back{CORRECTION_SUFFIX}": ["a grey horse on the road"]}
