"""The 👍 👎 ✏️ buttons under a caption and their callback data, one protocol for two processes.

The worker sends the buttons with the caption; the bot parses the presses and redraws the buttons.
Callback data is short, versioned and strictly checked: `r1:<caption_id>:<up|down|fix>`.
Plain dicts (the Bot API's JSON) so that neither side needs the other's libraries.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

CALLBACK_VERSION = "r1"
Action = Literal["up", "down", "fix"]
# Telegram allows 64 bytes of callback data; ids stay far below that.
_CALLBACK_PATTERN = re.compile(r"r1:([1-9][0-9]{0,17}):(up|down|fix)")
_LABELS: dict[str, str] = {"up": "👍", "down": "👎", "fix": "✏️"}
CHOSEN_MARK = " ✓"


@dataclass(frozen=True)
class FeedbackPress:
    """A parsed button press: which caption, and what the user chose."""

    caption_id: int
    action: Action


def callback_data(caption_id: int, action: Action) -> str:
    return f"{CALLBACK_VERSION}:{caption_id}:{action}"


def parse_callback_data(data: str | None) -> FeedbackPress | None:
    """The press, or None for anything not produced by `callback_data` (forged, old, truncated)."""
    if not data or len(data) > 64:
        return None
    match = _CALLBACK_PATTERN.fullmatch(data)
    if match is None:
        return None
    return FeedbackPress(caption_id=int(match.group(1)), action=match.group(2))  # type: ignore[arg-type]


def button_label(action: Action, chosen: str | None) -> str:
    return _LABELS[action] + (CHOSEN_MARK if action == chosen else "")


def feedback_keyboard(caption_id: int, chosen: str | None = None) -> dict:
    """The Bot API `InlineKeyboardMarkup` JSON; `chosen` ("up" or "down") is marked."""
    row = [
        {"text": button_label(action, chosen), "callback_data": callback_data(caption_id, action)}
        for action in ("up", "down", "fix")
    ]
    return {"inline_keyboard": [row]}
