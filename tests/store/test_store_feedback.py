"""Feedback for the trainer and for admins, on PostgreSQL and SQLite: training examples with their
authors, exclusion of a user's feedback, one user's history newest first, and the 0003 migration."""
from __future__ import annotations

from sqlalchemy import select, text

from store import queries
from store.db import downgrade_database, make_engine, make_session_factory, session_scope, upgrade_database
from store.feedback import feedback_examples, set_training_excluded, user_feedback
from store.models import User


def _captioned(session, user_id: int, media: str, message_id: int, text: str = "a dog runs on the grass"):
    request = queries.create_request(
        session, user_id=user_id, chat_id=user_id, message_id=message_id, file_id=f"f{message_id}",
        file_unique_id=f"u{message_id}", file_size=1,
    )
    queries.record_media(session, request.id, media_path=media, media_sha256=media.rsplit("/", 1)[-1])
    return queries.record_caption(session, request.id, text=text, model_version="v1", beam=3, latency_ms=1.0)


def test_feedback_examples_are_corrections_with_their_authors_and_captions_only_upvoted(any_session_factory):
    with session_scope(any_session_factory) as session:
        liked = _captioned(session, 1, "li/liked", 1)
        disputed = _captioned(session, 1, "di/disputed", 2)
        corrected = _captioned(session, 1, "co/corrected", 3)
        queries.set_rating(session, liked.id, 1, "up")
        queries.set_rating(session, disputed.id, 1, "up")
        queries.set_rating(session, disputed.id, 2, "down")
        queries.add_correction(session, corrected.id, 2, "two dogs play")
    with session_scope(any_session_factory) as session:
        examples = feedback_examples(session)
    assert [(e.media_path, e.text, e.source, e.user_id, e.user_excluded) for e in examples] == [
        ("co/corrected", "two dogs play", "correction", 2, False),
        ("li/liked", "a dog runs on the grass", "upvote", None, False),
    ]


def test_an_excluded_users_corrections_and_lone_upvotes_are_marked_and_their_downvotes_veto_nothing(any_session_factory):
    with session_scope(any_session_factory) as session:
        mine = _captioned(session, 1, "mi/mine", 1)
        shared = _captioned(session, 1, "sh/shared", 2)
        vetoed_by_spammer = _captioned(session, 1, "ve/vetoed", 3)
        queries.add_correction(session, mine.id, 7, "spam spam spam")
        queries.add_correction(session, mine.id, 1, "a dog on grass")
        queries.set_rating(session, mine.id, 7, "up")  # only the excluded user liked it
        queries.set_rating(session, shared.id, 7, "up")
        queries.set_rating(session, shared.id, 1, "up")  # someone else liked it too
        queries.set_rating(session, vetoed_by_spammer.id, 1, "up")
        queries.set_rating(session, vetoed_by_spammer.id, 7, "down")
    with session_scope(any_session_factory) as session:
        assert set_training_excluded(session, 7, True)
        assert not set_training_excluded(session, 12345, True), "no such user"
    with session_scope(any_session_factory) as session:
        marked = {(e.source, e.media_path, e.user_id): e.user_excluded for e in feedback_examples(session)}
    assert marked == {
        ("correction", "mi/mine", 7): True,
        ("correction", "mi/mine", 1): False,
        ("upvote", "mi/mine", None): True,
        ("upvote", "sh/shared", None): False,
        ("upvote", "ve/vetoed", None): False,
    }

    with session_scope(any_session_factory) as session:
        assert set_training_excluded(session, 7, False)
    with session_scope(any_session_factory) as session:
        examples = feedback_examples(session)
    assert not any(e.user_excluded for e in examples)
    assert "ve/vetoed" not in {e.media_path for e in examples}, "once included again, their 👎 counts again"


def test_user_feedback_counts_everything_and_lists_the_newest_first(any_session_factory):
    with session_scope(any_session_factory) as session:
        captions = [_captioned(session, 1, f"p{i}/p{i}", i, text=f"caption {i}") for i in range(4)]
        queries.set_rating(session, captions[0].id, 5, "up")
        queries.add_correction(session, captions[1].id, 5, "first fix")
        queries.set_rating(session, captions[2].id, 5, "down")
        queries.add_correction(session, captions[3].id, 5, "second fix")
        queries.set_rating(session, captions[3].id, 9, "up")  # someone else's
    with session_scope(any_session_factory) as session:
        assert user_feedback(session, 404) is None
        history = user_feedback(session, 5, limit=3)
    assert (history.ups, history.downs, history.corrections, history.excluded_at) == (1, 1, 2, None)
    assert [(item.kind, item.caption, item.correction) for item in history.newest] == [
        ("correction", "caption 3", "second fix"),
        ("down", "caption 2", None),
        ("correction", "caption 1", "first fix"),
    ]


def test_migration_0003_adds_the_exclusion_and_keeps_every_user_both_ways(any_db_url):
    upgrade_database(any_db_url, "0002")
    engine = make_engine(any_db_url)
    with engine.begin() as connection:  # the models are ahead of this schema: plain SQL
        connection.execute(text("INSERT INTO users (telegram_id, first_seen_at) VALUES (1, CURRENT_TIMESTAMP)"))
    engine.dispose()

    upgrade_database(any_db_url)
    engine = make_engine(any_db_url)
    with session_scope(make_session_factory(engine)) as session:
        assert set_training_excluded(session, 1, True)
    with session_scope(make_session_factory(engine)) as session:
        assert session.scalar(select(User.training_excluded_at).where(User.telegram_id == 1)) is not None
    engine.dispose()

    downgrade_database(any_db_url, "0002")
    engine = make_engine(any_db_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT telegram_id FROM users")).scalars().all() == [1]
    engine.dispose()
