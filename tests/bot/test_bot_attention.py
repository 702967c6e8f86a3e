"""🔍 under a caption, through the sandbox Bot API, the real bot and a real caption worker: a picture
of where the model looked for each word comes back as a reply to the caption, a second press
resends it without drawing again, and forged, foreign or forgotten presses are answered and
change nothing."""
from __future__ import annotations

import io
from pathlib import Path

from PIL import Image
from rq.job import Job
from service_stack import jpeg_bytes, wait_until
from sqlalchemy import select
from test_bot_conversation import answer_to, send_photo_and_wait_for_caption

from service.attention_maps import (
    attention_job_id,
    attention_map_caption,
    claim_drawing,
    end_drawing,
    remember_sent_file,
    sent_file_id,
)
from service.feedback_buttons import attention_callback_data
from store.models import CaptionRequest
from store.queries import get_caption

WORKER = "caption-worker-1"  # the shared stack's (tests/service_stack.py, serving_stack)


def press(stack, user_id: int, message_id: int, data: str, forge: bool = False) -> str:
    return answer_to(stack, stack.client.press_button(user_id, message_id, data, forge=forge)).get("text") or ""


def attention_maps_in(stack, user_id: int, reply_to: int) -> list[dict]:
    """The bot's photo replies to message `reply_to`."""
    return [m for m in stack.client.messages(user_id)
            if "photo" in m and (m.get("reply_to_message") or {}).get("message_id") == reply_to]


def wait_for_attention_maps(stack, user_id: int, reply_to: int, count: int) -> list[dict]:
    return wait_until(lambda: (maps := attention_maps_in(stack, user_id, reply_to)) and len(maps) >= count and maps,
                      timeout=60, what=f"{count} attention map(s) replying to message {reply_to}", interval=0.1)


def attention_job(stack, caption_id: int) -> Job | None:
    queue = stack.runtime.captions_queue
    return next(iter(Job.fetch_many([attention_job_id(caption_id)], connection=queue.connection,
                                    serializer=queue.serializer)), None)


def wait_for_finished_job(stack, caption_id: int) -> Job:
    """The drawing job, once it has ended (the picture arrives a moment before)."""
    return wait_until(lambda: (job := attention_job(stack, caption_id)) and job.get_status() == "finished" and job,
                      timeout=10, what=f"the attention job of caption {caption_id} to finish")


def maps_drawn(stack, caption_id: int) -> int:
    return stack.worker_log(WORKER).count(f"attention map of caption {caption_id} sent")


def test_magnifier_replies_to_the_caption_with_a_png_per_word_and_a_second_press_resends_it_without_drawing(stack, user_id):
    _, reply, caption_id = send_photo_and_wait_for_caption(stack, user_id, jpeg_bytes(seed=701))
    buttons = reply["reply_markup"]["inline_keyboard"][0]
    assert [b["text"] for b in buttons] == ["👍", "👎", "✏️", "🔍"]
    assert buttons[3]["callback_data"] == attention_callback_data(caption_id)

    assert "Drawing" in press(stack, user_id, reply["message_id"], buttons[3]["callback_data"])
    [first] = wait_for_attention_maps(stack, user_id, reply["message_id"], 1)
    picture = Image.open(io.BytesIO(stack.client.file_bytes(first["photo"][-1]["file_id"])))
    assert picture.format == "PNG" and picture.width >= 1000  # five panels a row
    with stack.session() as session:
        assert first["caption"] == attention_map_caption(get_caption(session, caption_id).text)
    job = wait_for_finished_job(stack, caption_id)
    assert job.args == [caption_id, reply["message_id"]], "ids only"
    assert sent_file_id(stack.runtime.redis, caption_id) == first["photo"][-1]["file_id"]
    assert maps_drawn(stack, caption_id) == 1

    assert press(stack, user_id, reply["message_id"], buttons[3]["callback_data"]) == ""
    second = wait_for_attention_maps(stack, user_id, reply["message_id"], 2)[1]
    assert second["photo"][-1]["file_id"] == first["photo"][-1]["file_id"]
    assert attention_job(stack, caption_id).enqueued_at == job.enqueued_at, "no second job was queued"
    assert maps_drawn(stack, caption_id) == 1
    assert stack.runtime.captions_queue.count == 0


def test_forged_magnifier_data_and_another_chats_caption_are_answered_and_draw_nothing(stack, user_id):
    _, reply, caption_id = send_photo_and_wait_for_caption(stack, user_id, jpeg_bytes(seed=702))
    other_user = user_id + 500_000
    _, other_reply, other_caption_id = send_photo_and_wait_for_caption(stack, other_user, jpeg_bytes(seed=703))
    forged = [f"a1:{caption_id + 10_000}", f"a0:{caption_id}", f"a2:{caption_id}", f"a1:0{caption_id}",
              f"a1:{caption_id}:x", "a1:" + "9" * 30]
    for data in forged:
        assert "no longer works" in press(stack, user_id, reply["message_id"], data, forge=True), data
    # another chat's caption, pressed under this user's own caption message
    assert "no longer works" in press(stack, user_id, reply["message_id"], attention_callback_data(other_caption_id), forge=True)

    assert attention_job(stack, caption_id) is None and attention_job(stack, other_caption_id) is None
    assert attention_maps_in(stack, user_id, reply["message_id"]) == []
    assert attention_maps_in(stack, other_user, other_reply["message_id"]) == []


def test_after_forget_the_map_is_gone_from_redis_and_a_press_is_answered_without_drawing(stack, user_id):
    _, reply, caption_id = send_photo_and_wait_for_caption(stack, user_id, jpeg_bytes(seed=704))
    data = attention_callback_data(caption_id)
    press(stack, user_id, reply["message_id"], data)
    wait_for_attention_maps(stack, user_id, reply["message_id"], 1)
    wait_for_finished_job(stack, caption_id)
    assert sent_file_id(stack.runtime.redis, caption_id) is not None

    stack.forget(user_id)
    assert sent_file_id(stack.runtime.redis, caption_id) is None
    assert attention_job(stack, caption_id) is None, "the ended job left Redis"

    assert "no longer works" in press(stack, user_id, reply["message_id"], data)
    assert len(attention_maps_in(stack, user_id, reply["message_id"])) == 1
    assert attention_job(stack, caption_id) is None


def test_a_caption_whose_photo_file_is_gone_is_answered_politely_and_queues_nothing(stack, user_id):
    sent, reply, caption_id = send_photo_and_wait_for_caption(stack, user_id, jpeg_bytes(seed=705))
    with stack.session() as session:
        media_path = session.scalars(select(CaptionRequest.media_path).where(
            CaptionRequest.user_id == user_id, CaptionRequest.message_id == sent["message_id"])).one()
    Path(media_path).unlink()

    assert "no longer have this photo" in press(stack, user_id, reply["message_id"], attention_callback_data(caption_id))
    assert attention_job(stack, caption_id) is None
    assert attention_maps_in(stack, user_id, reply["message_id"]) == []


def test_a_drawing_that_fails_is_apologised_for_and_the_next_press_queues_it_again(stack, user_id):
    sent, reply, caption_id = send_photo_and_wait_for_caption(stack, user_id, jpeg_bytes(seed=706))
    with stack.session() as session:
        media_path = Path(session.scalars(select(CaptionRequest.media_path).where(
            CaptionRequest.user_id == user_id, CaptionRequest.message_id == sent["message_id"])).one())
    photo = media_path.read_bytes()
    media_path.write_bytes(photo[:200])  # damaged on disk: the worker cannot decode it
    data = attention_callback_data(caption_id)

    assert "Drawing" in press(stack, user_id, reply["message_id"], data)
    apology = stack.bot_says(user_id, "couldn't draw where I looked", after=reply["message_id"], timeout=60)
    assert apology["reply_to_message"]["message_id"] == reply["message_id"]
    # RQ runs the failure callback (the apology) before it marks the job failed
    wait_until(lambda: attention_job(stack, caption_id).get_status() == "failed", timeout=15,
               what="the drawing job to be marked failed")

    media_path.write_bytes(photo)
    assert "Drawing" in press(stack, user_id, reply["message_id"], data), "the failed drawing left no claim behind"
    wait_for_attention_maps(stack, user_id, reply["message_id"], 1)


def test_a_press_while_the_map_is_being_drawn_queues_nothing_more(stack, user_id):
    _, reply, caption_id = send_photo_and_wait_for_caption(stack, user_id, jpeg_bytes(seed=707))
    assert claim_drawing(stack.runtime.redis, caption_id, ttl_s=60)  # as the first press leaves it

    assert "still drawing" in press(stack, user_id, reply["message_id"], attention_callback_data(caption_id))
    assert attention_job(stack, caption_id) is None
    end_drawing(stack.runtime.redis, caption_id)


def test_a_kept_file_telegram_no_longer_knows_is_dropped_and_the_map_drawn_again(stack, user_id):
    _, reply, caption_id = send_photo_and_wait_for_caption(stack, user_id, jpeg_bytes(seed=708))
    remember_sent_file(stack.runtime.redis, caption_id, "AgACAgQAAxkBAAno-such-file")

    assert "Drawing" in press(stack, user_id, reply["message_id"], attention_callback_data(caption_id))
    [drawn] = wait_for_attention_maps(stack, user_id, reply["message_id"], 1)
    wait_for_finished_job(stack, caption_id)
    assert sent_file_id(stack.runtime.redis, caption_id) == drawn["photo"][-1]["file_id"]
