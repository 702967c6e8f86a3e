"""A person's side of the conversation, through the sandbox Bot API, the real bot and a real worker:
photo in, caption out with buttons; ratings, corrections, /forget, admin commands, hints."""
from __future__ import annotations

import hashlib
import time
from pathlib import Path

from rq.job import Job
from rq.serializers import JSONSerializer
from service_stack import ADMIN_ID, jpeg_bytes, wait_until
from sqlalchemy import func, select

from service.feedback_buttons import parse_callback_data
from service.retrain_lock import RetrainLock
from store.models import Caption, CaptionRequest, Correction, Rating, RequestStatus, User
from store.queries import get_caption


def send_photo_and_wait_for_caption(stack, user_id: int, photo: bytes) -> tuple[dict, dict, int]:
    """(the user's message, the bot's caption reply, the caption id on its buttons)."""
    sent = stack.client.send_photo(user_id, photo)
    reply = stack.reply_to(user_id, sent["message_id"], timeout=60)
    caption_id = parse_callback_data(reply["reply_markup"]["inline_keyboard"][0][0]["callback_data"]).caption_id
    return sent, reply, caption_id


def answer_to(stack, query_id: str) -> dict:
    return wait_until(
        lambda: next((a for a in stack.client.callback_answers() if a["callback_query_id"] == query_id), None),
        timeout=15,
        what=f"an answer to callback query {query_id}",
    )


def buttons_of(stack, user_id: int, message_id: int) -> list[str]:
    message = next(m for m in stack.client.messages(user_id) if m["message_id"] == message_id)
    return [button["text"] for button in message["reply_markup"]["inline_keyboard"][0]]


def test_photo_gets_a_caption_reply_with_four_buttons_and_request_caption_media_are_stored(stack, user_id):
    photo = jpeg_bytes(seed=1)
    sent, reply, caption_id = send_photo_and_wait_for_caption(stack, user_id, photo)

    def reply_saved() -> bool:  # the worker saves it just after sendMessage returns
        with stack.session() as session:
            return get_caption(session, caption_id).reply_message_id == reply["message_id"]

    wait_until(reply_saved, timeout=10, what="the reply's message id to be saved")
    assert reply["text"].strip()
    assert [b["text"] for b in reply["reply_markup"]["inline_keyboard"][0]] == ["👍", "👎", "✏️", "🔍"]
    assert "typing" in [action["action"] for action in stack.client.chat_actions(user_id)]
    with stack.session() as session:
        caption = get_caption(session, caption_id)
        request = caption.request
        assert (request.user_id, request.chat_id, request.message_id) == (user_id, user_id, sent["message_id"])
        assert request.status is RequestStatus.done and request.error_reason is None
        assert caption.model_version == "random-test" and caption.beam == stack.settings.caption_beam
        assert caption.latency_ms > 0
        media = Path(request.media_path)
    assert media.is_relative_to(stack.settings.resolved_media_dir)
    assert hashlib.sha256(media.read_bytes()).hexdigest() == request.media_sha256 == hashlib.sha256(photo).hexdigest()


def test_rating_is_stored_a_second_press_changes_it_and_the_buttons_show_the_choice(stack, user_id):
    _, reply, caption_id = send_photo_and_wait_for_caption(stack, user_id, jpeg_bytes(seed=2))

    answer_to(stack, stack.client.press_button(user_id, reply["message_id"], f"r1:{caption_id}:up"))
    wait_until(lambda: buttons_of(stack, user_id, reply["message_id"])[0] == "👍 ✓", 10, "the 👍 to be marked")
    answer_to(stack, stack.client.press_button(user_id, reply["message_id"], f"r1:{caption_id}:down"))
    wait_until(lambda: buttons_of(stack, user_id, reply["message_id"])[1] == "👎 ✓", 10, "the 👎 to be marked")

    assert buttons_of(stack, user_id, reply["message_id"]) == ["👍", "👎 ✓", "✏️", "🔍"]
    with stack.session() as session:
        ratings = session.scalars(select(Rating).where(Rating.caption_id == caption_id)).all()
        assert [(r.user_id, r.value) for r in ratings] == [(user_id, "down")]


def test_forged_or_stale_callbacks_are_answered_politely_and_change_nothing(stack, user_id):
    _, reply, caption_id = send_photo_and_wait_for_caption(stack, user_id, jpeg_bytes(seed=3))
    other_user = user_id + 100_000
    _, other_reply, other_caption_id = send_photo_and_wait_for_caption(stack, other_user, jpeg_bytes(seed=4))

    forged = [
        "r1:999999999:up",  # no such caption
        f"r1:{other_caption_id}:up",  # someone else's caption, pressed under this user's message
        f"r1:{caption_id}:sideways",  # not an action
        "r0:1:up",  # an old version
        "dislike",
    ]
    for data in forged:
        answer = answer_to(stack, stack.client.press_button(user_id, reply["message_id"], data, forge=True))
        assert "no longer works" in answer["text"], data

    with stack.session() as session:
        assert session.scalar(select(func.count(Rating.id)).where(Rating.caption_id.in_([caption_id, other_caption_id]))) == 0
    assert buttons_of(stack, user_id, reply["message_id"]) == ["👍", "👎", "✏️", "🔍"]


def test_pencil_then_a_reply_stores_the_correction(stack, user_id):
    _, reply, caption_id = send_photo_and_wait_for_caption(stack, user_id, jpeg_bytes(seed=5))

    answer_to(stack, stack.client.press_button(user_id, reply["message_id"], f"r1:{caption_id}:fix"))
    prompt = stack.bot_says(user_id, "better description", after=reply["message_id"])
    assert prompt["reply_to_message"]["message_id"] == reply["message_id"]
    stack.client.send_text(user_id, "  a brown dog  catches a red ball ", reply_to_message_id=prompt["message_id"])
    stack.bot_says(user_id, "I saved your description", after=prompt["message_id"])

    with stack.session() as session:
        corrections = session.scalars(select(Correction).where(Correction.caption_id == caption_id)).all()
        assert [(c.user_id, c.text) for c in corrections] == [(user_id, "a brown dog catches a red ball")]


def test_forget_deletes_the_users_data_and_the_photos_nobody_else_sent(stack, user_id):
    shared_photo, own_photo = jpeg_bytes(seed=6), jpeg_bytes(seed=7)
    neighbour = user_id + 200_000
    _, reply, caption_id = send_photo_and_wait_for_caption(stack, user_id, shared_photo)
    send_photo_and_wait_for_caption(stack, user_id, own_photo)
    send_photo_and_wait_for_caption(stack, neighbour, shared_photo)
    answer_to(stack, stack.client.press_button(user_id, reply["message_id"], f"r1:{caption_id}:up"))
    with stack.session() as session:
        paths = {
            Path(p) for p in session.scalars(select(CaptionRequest.media_path).where(CaptionRequest.user_id == user_id))
        }
    assert len(paths) == 2 and all(path.exists() for path in paths)
    with stack.session() as session:
        own_jobs = [f"caption-request-{i}" for i in session.scalars(select(CaptionRequest.id).where(CaptionRequest.user_id == user_id))]
        [neighbours_job] = [f"caption-request-{i}" for i in session.scalars(select(CaptionRequest.id).where(CaptionRequest.user_id == neighbour))]
    queue = stack.runtime.captions_queue
    assert all(Job.fetch_many(own_jobs + [neighbours_job], connection=queue.connection, serializer=JSONSerializer))

    done = stack.forget(user_id)
    assert done["text"].startswith("Done: I deleted 2 photos and everything else")

    # Their finished jobs (which name the chat they answered) are gone from Redis; the neighbour's stays.
    assert Job.fetch_many(own_jobs, connection=queue.connection, serializer=JSONSerializer) == [None, None]
    assert Job.fetch(neighbours_job, connection=queue.connection, serializer=JSONSerializer).get_status() == "finished"

    with stack.session() as session:
        assert session.get(User, user_id) is None
        assert session.scalar(select(func.count()).select_from(CaptionRequest).where(CaptionRequest.user_id == user_id)) == 0
        assert session.scalar(select(func.count()).select_from(Rating).where(Rating.user_id == user_id)) == 0
        assert session.get(Caption, caption_id) is None
        neighbour_paths = set(session.scalars(select(CaptionRequest.media_path).where(CaptionRequest.user_id == neighbour)))
    shared_path = next(path for path in paths if str(path) in neighbour_paths)
    own_path = next(path for path in paths if path != shared_path)
    assert not own_path.exists(), "a photo only this user sent is deleted"
    assert shared_path.exists(), "a photo someone else also sent stays for them"


def test_retrain_is_refused_to_non_admins_and_queued_on_training_for_admins(stack, user_id):
    training = stack.runtime.training_queue
    training.empty()
    sent = stack.client.send_text(user_id, "/retrain")
    stack.bot_says(user_id, "only the bot's admins", after=sent["message_id"])
    assert training.count == 0

    sent = stack.client.send_text(ADMIN_ID, "/retrain")
    answer = stack.bot_says(ADMIN_ID, "Retraining is queued", after=sent["message_id"])
    jobs = wait_until(training.get_jobs, timeout=10, what="the retraining job to be queued")  # queued just after the answer
    assert [(job.func_name, job.args[:3]) for job in jobs] == [
        ("worker.retraining.retrain", [ADMIN_ID, ADMIN_ID, answer["message_id"]])
    ]
    assert training.serializer is JSONSerializer or training.serializer.__name__ == "JSONSerializer"
    training.empty()
    RetrainLock(stack.runtime.redis).release(jobs[0].args[3])


def test_admin_stats_and_model_report_the_service_and_others_are_refused(stack, user_id):
    send_photo_and_wait_for_caption(stack, user_id, jpeg_bytes(seed=8))
    sent = stack.client.send_text(ADMIN_ID, "/stats")
    stats = stack.bot_says(ADMIN_ID, "Requests:", after=sent["message_id"])["text"]
    assert "Success rate:" in stats and "Median latency:" in stats and "👍 share:" in stats
    assert "Queue depth: captions 0" in stats and "Live workers: 1" in stats
    sent = stack.client.send_text(ADMIN_ID, "/model")
    stack.bot_says(ADMIN_ID, "version random-test", after=sent["message_id"])
    sent = stack.client.send_text(user_id, "/stats")
    stack.bot_says(user_id, "only the bot's admins", after=sent["message_id"])


def test_start_explains_the_bot_and_that_feedback_may_improve_it(stack, user_id):
    sent = stack.client.send_text(user_id, "/start")
    text = stack.bot_says(user_id, "photo", after=sent["message_id"])["text"]
    assert "describe" in text and "improve" in text and "/forget" in text
    sent = stack.client.send_text(user_id, "/help")
    assert "20 MB" in stack.bot_says(user_id, "MB", after=sent["message_id"])["text"]


def test_text_stickers_and_unknown_commands_get_a_short_hint(stack, user_id):
    for text in ["hello there", "/unknown"]:
        sent = stack.client.send_text(user_id, text)
        reply = stack.bot_says(user_id, "Send me a photo", after=sent["message_id"])
        assert len(reply["text"]) < 80


def test_more_photos_than_the_rate_limit_in_a_minute_get_asked_to_wait(stack, user_id):
    limit = stack.settings.rate_limit_per_minute
    if time.time() % 60 > 45:  # the limit counts per calendar minute: start inside one
        time.sleep(61 - time.time() % 60)
    sent = [stack.client.send_photo(user_id, jpeg_bytes(seed=100 + i)) for i in range(limit + 1)]
    stack.bot_says(user_id, "wait a minute", timeout=30)
    sent_ids = {message["message_id"] for message in sent}

    def captions() -> int:
        return sum(
            1 for m in stack.client.messages(user_id) if (m.get("reply_to_message") or {}).get("message_id") in sent_ids
        )

    wait_until(lambda: captions() >= limit, timeout=60, what="captions for the photos within the limit")
    with stack.session() as session:
        recorded = session.scalar(select(func.count()).select_from(CaptionRequest).where(CaptionRequest.user_id == user_id))
    assert recorded == limit
