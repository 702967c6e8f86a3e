"""The queries the bot, workers and trainer rely on, on PostgreSQL and SQLite alike."""
from __future__ import annotations

import threading
from datetime import timezone

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from store import queries
from store.db import make_engine, make_session_factory, session_scope
from store.models import (
    Base,
    Caption,
    CaptionRequest,
    Correction,
    ModelStatus,
    Rating,
    RequestStatus,
    User,
)


def _photo(session, user_id: int, *, message_id: int = 1) -> CaptionRequest:
    return queries.create_request(
        session,
        user_id=user_id,
        chat_id=user_id,
        message_id=message_id,
        file_id=f"file-{user_id}-{message_id}",
        file_unique_id=f"unique-{user_id}-{message_id}",
        file_size=1234,
    )


def _captioned(session, user_id: int, media: str, *, latency_ms: float = 100.0, message_id: int = 1) -> Caption:
    """A request whose photo was kept at `media` and whose caption reached the user."""
    request = _photo(session, user_id, message_id=message_id)
    queries.record_media(session, request.id, media_path=media, media_sha256=media.rsplit("/", 1)[-1])
    caption = queries.record_caption(
        session, request.id, text="a dog runs on the grass", model_version="v1", beam=3, latency_ms=latency_ms
    )
    queries.mark_delivered(session, request.id, reply_message_id=1000 + message_id)
    return caption


def _count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_second_rating_changes_the_value_and_keeps_one_row(any_session_factory):
    with session_scope(any_session_factory) as session:
        caption_id = _captioned(session, 10, "ab/abcd").id
    with session_scope(any_session_factory) as session:
        first = queries.set_rating(session, caption_id, 20, "up")
        assert first.value == "up"
    with session_scope(any_session_factory) as session:
        second = queries.set_rating(session, caption_id, 20, "down")
        assert second.value == "down"
        assert second.updated_at >= first.updated_at
    with session_scope(any_session_factory) as session:
        rows = session.scalars(select(Rating)).all()
        assert [(r.caption_id, r.user_id, r.value) for r in rows] == [(caption_id, 20, "down")]


def test_rating_other_than_up_or_down_is_refused_and_database_checks_it_too(any_session_factory):
    with session_scope(any_session_factory) as session:
        caption_id = _captioned(session, 10, "ab/abcd").id
    with pytest.raises(ValueError), session_scope(any_session_factory) as session:
        queries.set_rating(session, caption_id, 20, "meh")
    with pytest.raises(IntegrityError), session_scope(any_session_factory) as session:
        queries.ensure_user(session, 20)
        session.add(Rating(caption_id=caption_id, user_id=20, value="meh"))
        session.flush()


def test_forget_user_deletes_their_data_and_returns_only_orphaned_media(any_session_factory):
    with session_scope(any_session_factory) as session:
        shared = _captioned(session, 1, "sh/shared", message_id=1)  # the same photo as user 2's
        own = _captioned(session, 1, "ow/own", message_id=2)
        others = _captioned(session, 2, "sh/shared", message_id=3)
        _photo(session, 1, message_id=4)  # never captioned: no media
        queries.set_rating(session, own.id, 2, "up")  # user 2 rated user 1's caption
        queries.set_rating(session, others.id, 1, "down")  # user 1 rated user 2's caption
        queries.add_correction(session, others.id, 1, "a black dog")
        queries.add_correction(session, others.id, 2, "a dog on grass")
        shared_id, others_id = shared.id, others.id

    with session_scope(any_session_factory) as session:
        orphaned = queries.forget_user(session, 1)
    assert orphaned == ["ow/own"]

    with session_scope(any_session_factory) as session:
        assert session.get(User, 1) is None
        assert session.scalars(select(CaptionRequest.user_id)).all() == [2]
        assert session.scalars(select(Caption.id)).all() == [others_id]
        assert session.get(Caption, shared_id) is None
        assert _count(session, Rating) == 0  # both: on user 1's caption, and by user 1
        assert [(c.user_id, c.text) for c in session.scalars(select(Correction))] == [
            (2, "a dog on grass")
        ]


def test_forget_user_who_never_wrote_is_harmless(any_session_factory):
    with session_scope(any_session_factory) as session:
        _captioned(session, 2, "ab/abcd")
    with session_scope(any_session_factory) as session:
        assert queries.forget_user(session, 999) == []
        assert _count(session, CaptionRequest) == 1


def test_service_stats_on_a_hand_checked_set(any_session_factory):
    with session_scope(any_session_factory) as session:
        captions = [
            _captioned(session, 1, f"m/{i}", latency_ms=ms, message_id=i)
            for i, ms in enumerate([300.0, 100.0, 200.0])
        ]
        queries.mark_failed(session, _photo(session, 1, message_id=10).id, "corrupt_image")
        _photo(session, 2, message_id=11)  # still queued: counted, not finished
        queries.set_rating(session, captions[0].id, 1, "up")
        queries.set_rating(session, captions[0].id, 2, "up")
        queries.set_rating(session, captions[1].id, 2, "up")
        queries.set_rating(session, captions[2].id, 2, "down")
    with session_scope(any_session_factory) as session:
        stats = queries.service_stats(session)
    assert stats == {
        "requests": 5,
        "done": 3,
        "failed": 1,
        "success_rate": 0.75,  # 3 of the 4 finished
        "median_latency_ms": 200.0,
        "up_share": 0.75,  # 3 of 4 ratings
    }


def test_median_latency_of_an_even_count_is_the_mean_of_the_middle_two(any_session_factory):
    with session_scope(any_session_factory) as session:
        for i, ms in enumerate([40.0, 10.0, 1000.0, 20.0]):
            _captioned(session, 1, f"m/{i}", latency_ms=ms, message_id=i)
        assert queries.service_stats(session)["median_latency_ms"] == 30.0


def test_service_stats_of_an_empty_database_has_no_rates(any_session_factory):
    with session_scope(any_session_factory) as session:
        assert queries.service_stats(session) == {
            "requests": 0,
            "done": 0,
            "failed": 0,
            "success_rate": None,
            "median_latency_ms": None,
            "up_share": None,
        }


def test_request_goes_queued_running_done_with_utc_timestamps(any_session_factory):
    with session_scope(any_session_factory) as session:
        request_id = _photo(session, 7).id
    with session_scope(any_session_factory) as session:
        request = queries.get_request(session, request_id)
        assert request.status is RequestStatus.queued and request.finished_at is None
        assert request.created_at.tzinfo == timezone.utc
        queries.mark_running(session, request_id)
    with session_scope(any_session_factory) as session:
        assert queries.get_request(session, request_id).status is RequestStatus.running
        assert queries.record_media(session, request_id, media_path="ca/cat", media_sha256="cat")
        caption = queries.record_caption(
            session, request_id, text="a cat", model_version="v2", beam=3, latency_ms=12.5
        )
    with session_scope(any_session_factory) as session:
        assert queries.get_request(session, request_id).status is RequestStatus.running, "not done until sent"
        assert queries.mark_delivered(session, request_id, 555)
    with session_scope(any_session_factory) as session:
        request = queries.get_request(session, request_id)
        assert request.status is RequestStatus.done
        assert request.finished_at.tzinfo == timezone.utc
        assert request.finished_at >= request.created_at
        assert (request.media_path, request.media_sha256) == ("ca/cat", "cat")
        caption = queries.get_caption(session, caption.id)
        assert (caption.text, caption.reply_message_id, caption.latency_ms) == ("a cat", 555, 12.5)
        assert caption.request.user_id == 7


def test_failed_request_keeps_its_reason(any_session_factory):
    with session_scope(any_session_factory) as session:
        request_id = _photo(session, 7).id
        queries.mark_failed(session, request_id, "image_too_large")
    with session_scope(any_session_factory) as session:
        request = queries.get_request(session, request_id)
        assert (request.status, request.error_reason) == (RequestStatus.failed, "image_too_large")
        assert request.finished_at is not None


def test_retried_job_gets_the_caption_stored_the_first_time(any_session_factory):
    with session_scope(any_session_factory) as session:
        first = _captioned(session, 1, "ab/abcd")
    with session_scope(any_session_factory) as session:
        again = queries.record_caption(
            session, first.request_id, text="something else", model_version="v1", beam=3, latency_ms=5
        )
        assert again.id == first.id and again.text == first.text
        assert _count(session, Caption) == 1


def test_unknown_ids_read_as_none_and_updates_to_them_raise(any_session_factory):
    with session_scope(any_session_factory) as session:
        assert queries.get_request(session, 404) is None
        assert queries.get_caption(session, 404) is None
        with pytest.raises(LookupError):
            queries.mark_running(session, 404)
        assert queries.record_caption(session, 404, text="a", model_version="v1", beam=3, latency_ms=1) is None
        assert not queries.record_media(session, 404, media_path="ab/ab", media_sha256="ab")
        assert not queries.mark_delivered(session, 404, 1)


def test_ensure_user_keeps_the_first_seen_time(any_session_factory):
    with session_scope(any_session_factory) as session:
        first_seen = queries.ensure_user(session, 42).first_seen_at
    with session_scope(any_session_factory) as session:
        assert queries.ensure_user(session, 42).first_seen_at == first_seen
        assert _count(session, User) == 1


def test_activating_a_model_version_retires_the_one_before(any_session_factory):
    with session_scope(any_session_factory) as session:
        assert queries.active_model_version(session) is None
        queries.add_model_version(session, version="v1", encoder="efficientnet_lite0", path="/m/v1",
                                  metrics={"bleu4": 0.2}, data_counts={"flickr8k": 6000})
        queries.activate_model_version(session, "v1")
        queries.add_model_version(session, version="v2", encoder="efficientnet_lite0", path="/m/v2",
                                  metrics={"bleu4": 0.21}, parent_version="v1")
        assert queries.active_model_version(session).version == "v1"  # a candidate serves nobody
    with session_scope(any_session_factory) as session:
        queries.activate_model_version(session, "v2")
    with session_scope(any_session_factory) as session:
        active = queries.active_model_version(session)
        assert (active.version, active.metrics, active.parent_version) == ("v2", {"bleu4": 0.21}, "v1")
        assert queries.get_model_version(session, "v1").status is ModelStatus.retired
        assert active.activated_at.tzinfo == timezone.utc


def test_sqlite_file_takes_writes_from_many_threads_without_locking_errors(sqlite_url):
    """One-machine mode: the bot and a worker write the same SQLite file at once."""
    engine = make_engine(sqlite_url)
    Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    errors: list[BaseException] = []

    def write(user_id: int) -> None:
        try:
            for i in range(15):
                with session_scope(factory) as session:
                    # Read, then write: the pattern that fails midway without BEGIN IMMEDIATE.
                    queries.service_stats(session)
                    _photo(session, user_id, message_id=i)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with session_scope(factory) as session:
        assert _count(session, CaptionRequest) == 60
    engine.dispose()


def test_a_photo_path_recorded_before_its_caption_is_found_by_forget_and_kept_while_in_use(any_session_factory):
    """Workers record the file's path before writing it, so /forget at any moment finds it."""
    with session_scope(any_session_factory) as session:
        mine, theirs = _photo(session, 1).id, _photo(session, 2).id
        assert queries.record_media(session, mine, media_path="sh/shared", media_sha256="shared")
        assert queries.record_media(session, theirs, media_path="sh/shared", media_sha256="shared")
        solo = _photo(session, 1, message_id=2).id
        assert queries.record_media(session, solo, media_path="so/solo", media_sha256="solo")
    with session_scope(any_session_factory) as session:
        assert queries.forget_user(session, 1) == ["so/solo"]
        assert queries.media_in_use(session, "sh/shared")
        assert not queries.media_in_use(session, "so/solo")
        assert not queries.record_media(session, mine, media_path="sh/shared", media_sha256="shared")


def test_the_standing_request_for_a_message_is_its_newest_that_has_not_failed(any_session_factory):
    with session_scope(any_session_factory) as session:
        assert queries.standing_request_for_message(session, 70, 70, 5) is None
        first = _photo(session, 70, message_id=5)
        queries.mark_failed(session, first.id, "corrupt_image")
        assert queries.standing_request_for_message(session, 70, 70, 5) is None, "a failed request is asked again"
        second = _photo(session, 70, message_id=5)
        assert queries.standing_request_for_message(session, 70, 70, 5).id == second.id  # queued
        _photo(session, 71, message_id=5)  # another sender's message with the same number
        queries.mark_running(session, second.id)
        assert queries.standing_request_for_message(session, 70, 70, 5).id == second.id
        captioned = _captioned(session, 70, "cd/cdef", message_id=6)
    with session_scope(any_session_factory) as session:
        done = queries.standing_request_for_message(session, 70, 70, 6)
        assert done.status is RequestStatus.done and done.caption.id == captioned.id
        assert done.caption.reply_message_id == 1006
        assert queries.standing_request_for_message(session, 71, 71, 6) is None
