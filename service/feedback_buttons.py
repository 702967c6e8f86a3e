"""The 👍 👎 ✏️ 🔍 buttons under a caption and their callback data, one protocol for two processes.

The worker sends the buttons with the caption; the bot parses the presses and redraws the buttons.
Callback data is short, versioned and strictly checked: `r1:<caption_id>:<up|down|fix>`,
`a1:<caption_id>` for 🔍 (where the model looked for each word),
`x1:<caption_id>:<prompt token>` for the Cancel button under a ✏️ prompt (the token, 8 hex digits
the bot drew when it opened the prompt, names that one prompt: a stale Cancel matches none), and
`f1:<token>:<delete|keep>` for the two buttons under /forget's question (the token names that
question, so a stale or repeated press matches nothing). Every kind lives here, so that no two
share a prefix. Plain dicts (the Bot API's JSON) so that neither side needs the other's libraries.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Action = Literal["up", "down", "fix"]
_LABELS: dict[str, str] = {"up": "👍", "down": "👎", "fix": "✏️"}
CHOSEN_MARK = " ✓"
# Any version of Cancel data goes to the Cancel handler, which refuses all but the current one.
CANCEL_DATA_PREFIX = r"^x[0-9]+:"
CANCEL_LABEL = "Cancel"
# Likewise, any version of /forget's answers goes to its handler.
FORGET_DATA_PREFIX = r"^f[0-9]+:"
FORGET_LABELS: dict[str, str] = {"delete": "Delete everything", "keep": "Keep"}
# Likewise every version of 🔍 data goes to the attention handler.
ATTENTION_DATA_PREFIX = r"^a[0-9]+:"
ATTENTION_LABEL = "🔍"
# Telegram allows 64 bytes of callback data; ids stay far below that.
CALLBACK_DATA_LIMIT = 64
_CAPTION_ID = r"[1-9][0-9]{0,17}"


@dataclass(frozen=True)
class CallbackCodec:
    """One kind of callback data: `<version>:<field>:<field>…`, each field matching its pattern."""

    version: str
    fields: tuple[str, ...]  # a regular expression per field, without groups

    def encode(self, *values: object) -> str:
        return ":".join([self.version, *map(str, values)])

    def decode(self, data: str | None) -> tuple[str, ...] | None:
        """The fields, or None for anything longer than Telegram allows or not exactly this shape."""
        if not data or len(data) > CALLBACK_DATA_LIMIT:
            return None
        match = re.fullmatch(":".join([re.escape(self.version), *(f"({f})" for f in self.fields)]), data)
        return match.groups() if match else None


FEEDBACK_CODEC = CallbackCodec("r1", (_CAPTION_ID, "up|down|fix"))
_TOKEN = "[0-9a-f]{8}"
CANCEL_CODEC = CallbackCodec("x1", (_CAPTION_ID, _TOKEN))
FORGET_CODEC = CallbackCodec("f1", (_TOKEN, "delete|keep"))
ATTENTION_CODEC = CallbackCodec("a1", (_CAPTION_ID,))


@dataclass(frozen=True)
class FeedbackPress:
    """A parsed button press: which caption, and what the user chose."""

    caption_id: int
    action: Action


def callback_data(caption_id: int, action: Action) -> str:
    return FEEDBACK_CODEC.encode(caption_id, action)


def parse_callback_data(data: str | None) -> FeedbackPress | None:
    """The press, or None for anything not produced by `callback_data` (forged, old, truncated)."""
    fields = FEEDBACK_CODEC.decode(data)
    return None if fields is None else FeedbackPress(caption_id=int(fields[0]), action=fields[1])  # type: ignore[arg-type]


def button_label(action: Action, chosen: str | None) -> str:
    return _LABELS[action] + (CHOSEN_MARK if action == chosen else "")


def feedback_keyboard(caption_id: int, chosen: str | None = None) -> dict:
    """The Bot API `InlineKeyboardMarkup` JSON, 👍 👎 ✏️ 🔍; `chosen` ("up" or "down") is marked."""
    row = [
        {"text": button_label(action, chosen), "callback_data": callback_data(caption_id, action)}
        for action in ("up", "down", "fix")
    ]
    row.append({"text": ATTENTION_LABEL, "callback_data": attention_callback_data(caption_id)})
    return {"inline_keyboard": [row]}


@dataclass(frozen=True)
class AttentionPress:
    """A press of 🔍: show where the model looked for each word of this caption."""

    caption_id: int


def attention_callback_data(caption_id: int) -> str:
    return ATTENTION_CODEC.encode(caption_id)


def parse_attention_callback_data(data: str | None) -> AttentionPress | None:
    """The press, or None for anything not produced by `attention_callback_data`."""
    fields = ATTENTION_CODEC.decode(data)
    return None if fields is None else AttentionPress(caption_id=int(fields[0]))


@dataclass(frozen=True)
class CancelPress:
    """A press of Cancel under a ✏️ prompt: which caption the prompt asked about, and which prompt."""

    caption_id: int
    prompt_token: str


def cancel_callback_data(caption_id: int, prompt_token: str) -> str:
    return CANCEL_CODEC.encode(caption_id, prompt_token)


def parse_cancel_callback_data(data: str | None) -> CancelPress | None:
    """The press, or None for anything not produced by `cancel_callback_data`."""
    fields = CANCEL_CODEC.decode(data)
    return None if fields is None else CancelPress(caption_id=int(fields[0]), prompt_token=fields[1])


def cancel_keyboard(caption_id: int, prompt_token: str) -> dict:
    """The Bot API `InlineKeyboardMarkup` JSON of a ✏️ prompt: one Cancel button."""
    return {"inline_keyboard": [[{"text": CANCEL_LABEL, "callback_data": cancel_callback_data(caption_id, prompt_token)}]]}


ForgetChoice = Literal["delete", "keep"]


@dataclass(frozen=True)
class ForgetPress:
    """A press under /forget's question: which question, and whether to delete everything."""

    token: str
    choice: ForgetChoice


def forget_callback_data(token: str, choice: ForgetChoice) -> str:
    return FORGET_CODEC.encode(token, choice)


def parse_forget_callback_data(data: str | None) -> ForgetPress | None:
    """The press, or None for anything `forget_keyboard` did not produce."""
    fields = FORGET_CODEC.decode(data)
    return None if fields is None else ForgetPress(token=fields[0], choice=fields[1])  # type: ignore[arg-type]


def forget_keyboard(token: str) -> dict:
    """The Bot API `InlineKeyboardMarkup` JSON under /forget's question: delete, or keep."""
    row = [{"text": label, "callback_data": forget_callback_data(token, choice)} for choice, label in FORGET_LABELS.items()]
    return {"inline_keyboard": [row]}
