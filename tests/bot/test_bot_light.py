"""The bot stays light, its callback data is strict, and its rate limit counts per user in Redis."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bot.ratelimit import allow_photo
from captionbot.feedback_buttons import callback_data, feedback_keyboard, parse_callback_data

REPO_ROOT = Path(__file__).resolve().parents[2]

IMPORT_EVERY_BOT_MODULE = """
import pkgutil, sys, importlib
import bot
for module in pkgutil.iter_modules(bot.__path__):
    importlib.import_module(f"bot.{module.name}")
from bot.application import build_application
from captionbot.settings import Settings
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
    assert [button["callback_data"] for button in row] == ["r1:7:up", "r1:7:down", "r1:7:fix"]
    assert [button["text"].endswith("✓") for button in row] == [False, True, False]


def test_rate_limit_allows_the_limit_per_minute_per_user_then_refuses(redis_client):
    now = 1_000_020.0
    verdicts = [allow_photo(redis_client, 1, 3, now=now) for _ in range(4)]
    assert verdicts == [True, True, True, False]
    assert allow_photo(redis_client, 2, 3, now=now), "another user has their own allowance"
    assert allow_photo(redis_client, 1, 3, now=now + 60), "the next minute starts afresh"
