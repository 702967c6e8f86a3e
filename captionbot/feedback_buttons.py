"""The 👍 👎 ✏️ buttons under a caption and their callback data, one protocol for two processes.

The worker sends the buttons with the caption; the bot parses the presses and redraws the buttons.
Callback data is short, versioned and strictly checked: `r1:<caption_id>:<up|down|fix>`, and
`x1:<caption_id>:<prompt token>` for the Cancel button under a ✏️ prompt (the token, 8 hex digits
the bot drew when it opened the prompt, names that one prompt: a stale Cancel matches none).
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
CANCEL_VERSION = "x1"
# Any version of Cancel data goes to the Cancel handler, which refuses all but the current one.
CANCEL_DATA_PREFIX = r"^x[0-9]+:"
_CANCEL_PATTERN = re.compile(r"x1:([1-9][0-9]{0,17}):([0-9a-f]{8})")
CANCEL_LABEL = "Cancel"


@dataclass(frozen=True)
class FeedbackPress:
    """A parsed button press: which caption, and what the user chose."""

    caption_id: int
    action: Action


def callback_data(caption_id: int, action: Action) -> str:
    return f"{CALLBACK_VERSION}:{caption_id}:{action}"


def _fullmatch(pattern: re.Pattern[str], data: str | None) -> re.Match[str] | None:
    """None for anything longer than Telegram allows or not exactly the pattern."""
    return pattern.fullmatch(data) if data and len(data) <= 64 else None


def parse_callback_data(data: str | None) -> FeedbackPress | None:
    """The press, or None for anything not produced by `callback_data` (forged, old, truncated)."""
    match = _fullmatch(_CALLBACK_PATTERN, data)
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


@dataclass(frozen=True)
class CancelPress:
    """A press of Cancel under a ✏️ prompt: which caption the prompt asked about, and which prompt."""

    caption_id: int
    prompt_token: str


def cancel_callback_data(caption_id: int, prompt_token: str) -> str:
    return f"{CANCEL_VERSION}:{caption_id}:{prompt_token}"


def parse_cancel_callback_data(data: str | None) -> CancelPress | None:
    """The press, or None for anything not produced by `cancel_callback_data`."""
    match = _fullmatch(_CANCEL_PATTERN, data)
    if match is None:
        return None
    return CancelPress(caption_id=int(match.group(1)), prompt_token=match.group(2))


def cancel_keyboard(caption_id: int, prompt_token: str) -> dict:
    """The Bot API `InlineKeyboardMarkup` JSON of a ✏️ prompt: one Cancel button."""
    return {"inline_keyboard": [[{"text": CANCEL_LABEL, "callback_data": cancel_callback_data(caption_id, prompt_token)}]]}
