"""The bot stays light, its callback data is strict, and its rate limit counts per user in Redis."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bot.ratelimit import allow_correction, allow_photo
from bot.replies import forgotten
from service.feedback_buttons import (
    CALLBACK_DATA_LIMIT,
    attention_callback_data,
    callback_data,
    cancel_callback_data,
    feedback_keyboard,
    forget_keyboard,
    parse_attention_callback_data,
    parse_callback_data,
    parse_cancel_callback_data,
    parse_forget_callback_data,
)

REPO_ROOT = Path(__file__).resolve().parents[2]

IMPORT_EVERY_BOT_MODULE = """
import pkgutil, sys, importlib
import bot
for module in pkgutil.iter_modules(bot.__path__):
    importlib.import_module(f"bot.{module.name}")
from bot.application import build_application
from service.settings import Settings
build_application(Settings(telegram_token="1:x", redis_url="redis://127.0.0.1:1/0",
                           database_url="sqlite:///:memory:", _env_file=None))
heavy = sorted(name for name in sys.modules
               if name.split(".")[0] in ("tensorflow", "keras", "captioning", "training", "worker", "matplotlib", "pycocoevalcap", "nltk"))
print(",".join(heavy))
"""


def test_bot_modules_never_import_tensorflow_captioning_training_worker_or_the_metrics_and_plotting_libraries():
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERY_BOT_MODULE], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_callback_data_round_trips_for_every_button():
    for action in ("up", "down", "fix"):
        press = parse_callback_data(callback_data(42, action))
        assert press is not None and press.caption_id == 42 and press.action == action


def test_forged_or_malformed_callback_data_is_refused():
    for data in ["", None, "r1:42", "r2:42:up", "r1:0:up", "r1:-3:up", "r1:42:sideways", "r1:42:up:x",
                 "r1:042:up", "r1:4 2:up", "r1:42:up\n", "r1:" + "9" * 40 + ":up"]:
        assert parse_callback_data(data) is None, data


def test_keyboard_marks_the_chosen_rating_only():
    row = feedback_keyboard(7, chosen="down")["inline_keyboard"][0]
    assert [button["callback_data"] for button in row] == ["r1:7:up", "r1:7:down", "r1:7:fix", "a1:7"]
    assert [button["text"] for button in row] == ["👍", "👎 ✓", "✏️", "🔍"]


def test_attention_data_round_trips_fits_telegrams_64_bytes_and_anything_else_is_refused():
    assert parse_attention_callback_data(attention_callback_data(42)).caption_id == 42
    longest = attention_callback_data(10**18 - 1)  # the largest caption id the codec accepts
    assert parse_attention_callback_data(longest).caption_id == 10**18 - 1
    assert len(longest.encode()) <= CALLBACK_DATA_LIMIT == 64
    for data in ["", None, "a1", "a1:", "a2:42", "a0:42", "a1:0", "a1:-3", "a1:042", "a1:42:up", "a1:4 2",
                 "a1:42\n", "a1:" + "9" * 19, "r1:42:fix", "x1:42:0a1b2c3d"]:
        assert parse_attention_callback_data(data) is None, data
    assert parse_callback_data("a1:42") is None, "never taken for a rating"
    assert parse_cancel_callback_data("a1:42") is None, "nor for a Cancel"


def test_forget_buttons_round_trip_and_malformed_forget_data_is_refused():
    row = forget_keyboard("0a1b2c3d")["inline_keyboard"][0]
    assert [(b["text"], b["callback_data"]) for b in row] == [
        ("Delete everything", "f1:0a1b2c3d:delete"), ("Keep", "f1:0a1b2c3d:keep")
    ]
    press = parse_forget_callback_data("f1:0a1b2c3d:delete")
    assert press is not None and (press.token, press.choice) == ("0a1b2c3d", "delete")
    for data in ["", None, "f1:0a1b2c3d", "f2:0a1b2c3d:delete", "f1:0A1B2C3D:delete", "f1:0a1b2c3:delete",
                 "f1:0a1b2c3d:yes", "f1:0a1b2c3d:delete:x", "f1:0a1b2c3d:delete\n", "x1:0a1b2c3d:delete"]:
        assert parse_forget_callback_data(data) is None, data


def test_what_forget_deleted_is_said_in_words_with_the_number_agreeing():
    assert forgotten(anything=False, photos=0) == "Done: nothing was stored about you, so there was nothing to delete."
    assert forgotten(anything=True, photos=0) == "Done: I deleted everything I kept about you (no photos were stored)."
    assert forgotten(anything=True, photos=1) == "Done: I deleted 1 photo and everything else I kept about you."
    assert forgotten(anything=True, photos=3) == "Done: I deleted 3 photos and everything else I kept about you."


def test_rate_limit_allows_the_limit_per_minute_per_user_then_refuses(redis_client):
    now = 1_000_020.0
    verdicts = [allow_photo(redis_client, 1, 3, now=now) for _ in range(4)]
    assert verdicts == [True, True, True, False]
    assert allow_photo(redis_client, 2, 3, now=now), "another user has their own allowance"
    assert allow_photo(redis_client, 1, 3, now=now + 60), "the next minute starts afresh"


def test_cancel_data_round_trips_and_anything_else_is_refused():
    press = parse_cancel_callback_data(cancel_callback_data(42, "0a1b2c3d"))
    assert press is not None and (press.caption_id, press.prompt_token) == (42, "0a1b2c3d")
    assert len(cancel_callback_data(10**17, "ffffffff")) <= 64
    for data in ["", None, "x1:42", "x0:42:0a1b2c3d", "x1:0:0a1b2c3d", "x1:42:0A1B2C3D", "x1:42:0a1b2c3",
                 "x1:42:0a1b2c3d:x", "r1:42:fix", "x1:42:0a1b2c3d\n"]:
        assert parse_cancel_callback_data(data) is None, data
    assert parse_callback_data(cancel_callback_data(42, "0a1b2c3d")) is None, "never taken for a rating"


def test_corrections_have_their_own_per_minute_allowance_beside_photos(redis_client):
    now = 1_000_020.0
    assert [allow_correction(redis_client, 1, 2, now=now) for _ in range(3)] == [True, True, False]
    assert allow_photo(redis_client, 1, 2, now=now), "photos are counted apart"
    assert allow_correction(redis_client, 1, 2, now=now + 60), "the next minute starts afresh"


def test_a_long_feedback_listing_is_cut_to_one_telegram_message_and_says_how_many_more():
    from datetime import datetime, timedelta, timezone

    from bot.feedback_admin import format_feedback
    from store.feedback import FeedbackItem, UserFeedback

    start = datetime(2026, 12, 1, tzinfo=timezone.utc)
    items = [FeedbackItem(start - timedelta(minutes=i), "correction", i, "x" * 300, f"fix {i} " + "y" * 300) for i in range(50)]
    text = format_feedback(UserFeedback(7, None, ups=0, downs=0, corrections=500, newest=items))
    lines = text.splitlines()
    assert len(text) <= 4096 and lines[0].startswith("Feedback of user 7") and "500 corrections" in lines[0]
    assert "fix 0 " in lines[1] and lines[-1] == f"… and {500 - (len(lines) - 2)} more."
