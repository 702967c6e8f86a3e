"""Retraining and rollout end to end, through the sandbox Bot API, the real bot, a caption worker and
a trainer (separate processes), real Redis and PostgreSQL, on a tiny Flickr8k of coloured squares.

People caption, rate and correct photos; an admin's /retrain registers and promotes a new version
that has learned the corrections; workers switch to it; /rollback returns to the old one. A
second /retrain during a run is refused; a corrupt bundle is refused by the worker; a trainer
killed mid-run leaves the active model alone and its run marked failed.
"""
from __future__ import annotations

import itertools
import shutil
import signal
import time

import pytest
import redis
from retrain_fixtures import FEEDBACK_PHRASE, jpeg, red_square_jpeg, square_image
from rq.registry import StartedJobRegistry
from service_stack import ADMIN_ID, service_stack, wait_until

from service.feedback_buttons import parse_callback_data
from service.model_versions import activate, served_versions
from service.retrain_lock import RetrainLock
from store.models import Caption, ModelStatus
from store.queries import active_model_version, add_model_version, get_model_version, list_model_versions

pytestmark = pytest.mark.slow
BASE = "squares-base"
BLUE = (30, 60, 220)
CAPTION_WORKER, TRAINER = "caption-worker-rollout", "trainer-rollout"
_users = itertools.count(31_000)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, shared_squares):
    root = tmp_path_factory.mktemp("rollout")
    squares = shared_squares.with_own_features(root)
    with service_stack(root / "service", squares.base) as stack:
        stack.env.update({  # tolerances fit for nine val images, where one caption moves BLEU-4 by ~0.07
            "FLICKR8K_DIR": str(squares.flickr8k), "FEATURES_DIR": str(squares.features), "MODELS_ROOT": str(root / "models"),
            "RETRAIN_EPOCHS": "12", "RETRAIN_LEARNING_RATE": "0.003", "RETRAIN_BATCH_SIZE": "8", "RETRAIN_PATIENCE": "100",
            "RETRAIN_CORRECTION_WEIGHT": "4", "RETRAIN_TOLERANCE_BLEU4": "0.15", "RETRAIN_TOLERANCE_CIDER": "2",
            "RETRAIN_PROGRESS_INTERVAL_S": "0.2", "RETRAIN_LOCK_TTL_S": "6", "RATE_LIMIT_PER_MINUTE": "30",
            "RETRAIN_MAX_UNKNOWN_WORD_SHARE": "1",  # eight words of vocabulary: the feedback phrase is mostly new words
            "RETRAIN_WARMUP": "own-captions",  # the phrase puts old words after new ones (tests/training/test_retrain.py)
            "RETRAIN_FEEDBACK_REPEATS": "1",  # nine val squares: feedback drawn twice an epoch crowds them out
        })
        stack.start_bot()
        stack.start_worker(CAPTION_WORKER)
        stack.start_worker(TRAINER, queues=("training",))
        stack.wait_for_workers(CAPTION_WORKER, TRAINER)
        stack.redis = redis.Redis.from_url(stack.env["REDIS_URL"])
        yield stack
        stack.redis.close()


def caption_photo(stack, photo: bytes) -> tuple[int, dict, Caption]:
    """A new user sends `photo`; returns (user, the bot's reply, the stored caption)."""
    user = next(_users)
    sent = stack.client.send_photo(user, photo)
    reply = stack.reply_to(user, sent["message_id"], timeout=60)
    caption_id = parse_callback_data(reply["reply_markup"]["inline_keyboard"][0][0]["callback_data"]).caption_id
    with stack.session() as session:
        return user, reply, session.get(Caption, caption_id)


def correct(stack, user: int, reply: dict, caption_id: int, text: str) -> None:
    stack.client.press_button(user, reply["message_id"], f"r1:{caption_id}:fix")
    prompt = stack.bot_says(user, "better description", after=reply["message_id"])
    time.sleep(0.3)  # people take longer than this to type; the bot records the prompt just after sending it
    stack.client.send_text(user, text, reply_to_message_id=prompt["message_id"])
    stack.bot_says(user, "I saved your description", after=prompt["message_id"])


def rate(stack, user: int, reply: dict, caption_id: int, value: str) -> None:
    query = stack.client.press_button(user, reply["message_id"], f"r1:{caption_id}:{value}")
    stack.client.wait_for_callback_answer(query, timeout=15)


def served_by_worker(stack) -> str:
    return served_versions(stack.redis).get(CAPTION_WORKER, "")


def wait_until_served(stack, version: str) -> None:
    wait_until(lambda: served_by_worker(stack) == version, timeout=120, what=f"the worker to serve {version}", interval=0.2)


def admin_says(stack, command: str) -> tuple[dict, dict]:
    sent = stack.client.send_text(ADMIN_ID, command)
    return sent, stack.client.wait_for_message(ADMIN_ID, lambda m: m["message_id"] > sent["message_id"], timeout=15)


def test_feedback_retrain_promote_switch_and_rollback_end_to_end(stack):
    wait_until_served(stack, BASE)
    for i in range(20):  # red squares, which the base model has never seen, corrected to a new phrase
        user, reply, caption = caption_photo(stack, red_square_jpeg(i))
        assert caption.model_version == BASE and "scarlet" not in caption.text
        correct(stack, user, reply, caption.id, FEEDBACK_PHRASE)
    for i in range(3):
        user, reply, caption = caption_photo(stack, jpeg(square_image(BLUE, 800 + i)))
        rate(stack, user, reply, caption.id, "up")
    for i in range(2):
        user, reply, caption = caption_photo(stack, red_square_jpeg(60 + i))
        rate(stack, user, reply, caption.id, "down")

    _, answer = admin_says(stack, "/retrain")  # "queued", or already edited by the trainer
    assert answer["text"].startswith("Retraining")
    _, second = admin_says(stack, "/retrain")
    assert "already" in second["text"] and "won't queue another" in second["text"]

    report = stack.client.wait_for_message(ADMIN_ID, lambda m: "Retraining finished" in (m.get("text") or ""), timeout=300)
    curves = stack.client.wait_for_message(ADMIN_ID, lambda m: "photo" in m, timeout=30)
    progress = next(m for m in stack.client.messages(ADMIN_ID) if m["message_id"] == answer["message_id"])
    assert "Epoch 13/13 (self-critical): loss" in progress["text"] and "val BLEU-4" in progress["text"] and "Finished: promoted" in progress["text"]
    assert "Encoding feedback photos: 23/23" in progress["text"]
    assert "Promoted:" in report["text"] and "val BLEU-4" in report["text"] and "held-out BLEU-4" in report["text"]
    assert "20 corrections, 3 👍 captions, 2 corrected photos held back" in report["text"]
    assert "Training curves" in curves["caption"]
    wait_until(lambda: len(StartedJobRegistry("training", connection=stack.redis)) == 0, timeout=30,
               what="the retraining job to end")  # it sends the report just before it returns
    assert stack.runtime.training_queue.count == 0, "the refused /retrain queued nothing"

    with stack.session() as session:
        new = active_model_version(session)
        assert new.version != BASE and new.parent_version == BASE and new.status is ModelStatus.active
        assert new.metrics["val"]["BLEU-4"] > 0.5 and new.data_counts["corrections"] == 20
        assert get_model_version(session, BASE).status is ModelStatus.retired
        new_version = new.version
    assert new_version in report["text"]

    wait_until_served(stack, new_version)
    _, _, caption = caption_photo(stack, red_square_jpeg(500))
    assert caption.model_version == new_version and FEEDBACK_PHRASE in caption.text

    _, answer = admin_says(stack, "/rollback")
    assert f"{BASE} is the active model again (was {new_version})" in answer["text"]
    wait_until_served(stack, BASE)
    _, _, caption = caption_photo(stack, red_square_jpeg(501))
    assert caption.model_version == BASE and "scarlet" not in caption.text
    _, listing = admin_says(stack, "/models")
    assert f"*{BASE}" in listing["text"] and new_version in listing["text"] and f"worker {CAPTION_WORKER}: {BASE}" in listing["text"]


def test_a_corrupt_bundle_is_refused_by_the_worker_which_keeps_serving(stack, tmp_path):
    with stack.session() as session:
        serving = active_model_version(session)
    wait_until_served(stack, serving.version)
    with stack.session() as session:
        broken = tmp_path / "broken"
        shutil.copytree(serving.path, broken)
        (broken / "decoder.weights.npz").write_bytes(b"not a weights file")
        config = (broken / "config.json").read_text().replace(f'"version": "{serving.version}"', '"version": "corrupt-1"')
        (broken / "config.json").write_text(config)
        add_model_version(session, version="corrupt-1", encoder=serving.encoder, path=str(broken))
        activate(session, "corrupt-1")
        previous = serving.version

    wait_until(lambda: "refused corrupt-1" in served_by_worker(stack), timeout=60, what="the worker to refuse corrupt-1")
    _, reply, caption = caption_photo(stack, red_square_jpeg(502))
    assert caption.model_version == previous and reply["text"]
    assert "refusing model corrupt-1" in stack.worker_log(CAPTION_WORKER)

    _, answer = admin_says(stack, f"/rollback {previous}")
    assert f"{previous} is the active model again" in answer["text"]


def test_a_trainer_killed_mid_run_leaves_the_active_model_and_its_run_is_marked_failed(stack):
    with stack.session() as session:
        active_before = active_model_version(session).version
    stack.stop_worker(TRAINER)
    slow = "trainer-slow"
    stack.start_worker(slow, queues=("training",), RETRAIN_EPOCHS="1000")
    stack.wait_for_workers(slow)

    _, answer = admin_says(stack, "/retrain")
    assert answer["text"].startswith("Retraining")
    stack.client.wait_for_message(ADMIN_ID, lambda m: m["message_id"] == answer["message_id"] and "Epoch 2/1001" in m["text"],
                                  timeout=180)
    _, refused = admin_says(stack, "/retrain")
    assert "already running" in refused["text"] and "Epoch" in refused["text"]
    stack.stop_worker(slow, sig=signal.SIGKILL)

    stack.start_worker(TRAINER, queues=("training",))  # its upkeep finds the lost job
    failed = stack.client.wait_for_message(
        ADMIN_ID, lambda m: m["message_id"] == answer["message_id"] and "failed" in m["text"], timeout=120)
    assert "trainer stopped in the middle of the run" in failed["text"] and "active model is unchanged" in failed["text"]
    with stack.session() as session:
        assert active_model_version(session).version == active_before
        runs = [m for m in list_model_versions(session) if m.status is ModelStatus.failed]
        assert len(runs) == 1 and runs[0].notes.startswith("failed: the trainer stopped")
    assert RetrainLock(stack.redis).holder() is None
    assert served_by_worker(stack).startswith(active_before)
