"""/metrics of the real bot and a real caption worker move when a user sends a photo and rates it."""
from __future__ import annotations

import pytest
from metrics_samples import scrape, value
from service_stack import free_port, jpeg_bytes, service_stack, wait_until

WORKER = "metrics-worker"
USER = 7701


@pytest.fixture(scope="module")
def stack(tmp_path_factory, service_model_bundle):
    with service_stack(tmp_path_factory.mktemp("metrics"), service_model_bundle) as stack:
        stack.bot_port = free_port()
        stack.worker_port = free_port()
        stack.start_bot(metrics_port=stack.bot_port)
        stack.start_worker(WORKER, METRICS_PORT=str(stack.worker_port))
        stack.wait_for_workers(WORKER)
        yield stack


@pytest.fixture(scope="module")
def one_photo(stack):
    """Metrics of bot and worker before and after one photo captioned and rated 👍."""
    before = scrape(stack.bot_port), scrape(stack.worker_port)
    sent = stack.client.send_photo(USER, jpeg_bytes(seed=77))
    reply = stack.reply_to(USER, sent["message_id"], timeout=60)
    caption_id = int(reply["reply_markup"]["inline_keyboard"][0][0]["callback_data"].split(":")[1])
    stack.client.press_button(USER, reply["message_id"], f"r1:{caption_id}:up")
    bot_before = before[0]
    handled = "captionbot_bot_handler_seconds_count"  # observed once the press's handler has finished
    wait_until(lambda: value(scrape(stack.bot_port), handled, kind="callback_query")
               > value(bot_before, handled, kind="callback_query"),
               timeout=15, what="the bot to finish handling the press")
    # The worker counts "done" just after the reply is sent.
    wait_until(lambda: value(scrape(stack.worker_port), "captionbot_worker_requests_total", outcome="done")
               > value(before[1], "captionbot_worker_requests_total", outcome="done"),
               timeout=15, what="the worker to count the request")
    return before, (scrape(stack.bot_port), scrape(stack.worker_port))


def test_the_worker_counts_the_photo_and_times_every_stage(one_photo):
    (_, before), (_, after) = one_photo
    assert value(after, "captionbot_worker_requests_total", outcome="done") == \
        value(before, "captionbot_worker_requests_total", outcome="done") + 1
    count = "captionbot_worker_stage_seconds_count"
    for stage in ("queue_wait", "download", "decode", "resize", "encoder", "search", "media", "send", "job"):
        assert value(after, count, stage=stage) == value(before, count, stage=stage) + 1, stage
        assert value(after, "captionbot_worker_stage_seconds_sum", stage=stage) > \
            value(before, "captionbot_worker_stage_seconds_sum", stage=stage), stage
    # Marked running, the photo's path, its caption, marked delivered.
    assert value(after, count, stage="store") == value(before, count, stage="store") + 4
    assert value(after, "captionbot_worker_reply_seconds_count") == value(before, "captionbot_worker_reply_seconds_count") + 1


def test_the_worker_names_its_model_version_and_how_long_it_took_to_load(one_photo):
    (_, before), _ = one_photo
    assert value(before, "captionbot_model_info", version="random-test", canary="", encoder_runtime="onnxruntime") == 1.0
    assert value(before, "captionbot_worker_model_load_seconds") > 0.0


def test_the_bot_counts_the_photo_and_the_press_by_kind_and_times_their_handlers(one_photo):
    (before, _), (after, _) = one_photo
    for kind in ("photo", "callback_query"):
        assert value(after, "captionbot_bot_updates_total", kind=kind) == \
            value(before, "captionbot_bot_updates_total", kind=kind) + 1, kind
        assert value(after, "captionbot_bot_handler_seconds_count", kind=kind) == \
            value(before, "captionbot_bot_handler_seconds_count", kind=kind) + 1, kind


def test_the_bot_counts_a_thumbs_up_under_the_model_version_that_wrote_the_caption(one_photo):
    (before, _), (after, _) = one_photo
    labels = {"model_version": "random-test", "rating": "up"}
    assert value(after, "captionbot_bot_ratings_total", **labels) == value(before, "captionbot_bot_ratings_total", **labels) + 1


def test_the_bot_counts_a_refusal_by_its_reason(stack, one_photo):
    before = scrape(stack.bot_port)
    sent = stack.client.send_document(USER + 1, b"%PDF-1.4 not a photo", "notes.pdf", "application/pdf")
    stack.bot_says(USER + 1, "JPEG, PNG or WebP", after=sent["message_id"])
    after = scrape(stack.bot_port)
    assert value(after, "captionbot_bot_refusals_total", reason="unsupported_format") == \
        value(before, "captionbot_bot_refusals_total", reason="unsupported_format") + 1
    assert value(after, "captionbot_bot_updates_total", kind="document") == \
        value(before, "captionbot_bot_updates_total", kind="document") + 1


def test_the_worker_counts_a_photo_that_fails_for_good_under_its_reason(stack, one_photo):
    before = scrape(stack.worker_port)
    damaged = jpeg_bytes(seed=78, size=(640, 480))
    stack.client.send_photo(USER + 2, damaged[: len(damaged) // 2])
    stack.bot_says(USER + 2, "damaged", timeout=60)
    after = wait_until(lambda: (lambda now: now if value(now, "captionbot_worker_requests_total", outcome="failed")
                                > value(before, "captionbot_worker_requests_total", outcome="failed") else None)(
                           scrape(stack.worker_port)), timeout=15, what="the worker to count the failure")
    assert value(after, "captionbot_worker_failures_total", reason="corrupt_image") == \
        value(before, "captionbot_worker_failures_total", reason="corrupt_image") + 1
    assert value(after, "captionbot_worker_requests_total", outcome="done") == \
        value(before, "captionbot_worker_requests_total", outcome="done")
    assert value(after, "captionbot_worker_stage_seconds_count", stage="download") == \
        value(before, "captionbot_worker_stage_seconds_count", stage="download") + 1
