"""Reply markup checked as Telegram checks it. Only an inline keyboard becomes part of the
Message (Message.reply_markup); ForceReply and reply keyboards are kept aside for the chat page."""
from __future__ import annotations

from typing import Any

from sandbox.params import bad_request

_BUTTON_ACTIONS = (
    "callback_data", "url", "web_app", "login_url", "switch_inline_query",
    "switch_inline_query_current_chat", "switch_inline_query_chosen_chat", "copy_text",
    "callback_game", "pay",
)
MAX_CALLBACK_DATA_BYTES = 64


def _check_inline_keyboard(markup: dict[str, Any]) -> dict[str, Any]:
    rows = markup.get("inline_keyboard")
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request("field \"inline_keyboard\" of the InlineKeyboardMarkup must be an Array")
    for row in rows:
        for button in row:
            if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                raise bad_request("can't parse inline keyboard button: Text buttons are unallowed"
                                  " in the inline keyboard")
            actions = [name for name in _BUTTON_ACTIONS if name in button]
            if len(actions) != 1:
                raise bad_request("can't parse inline keyboard button: exactly one of the optional"
                                  " fields must be used")
            data = button.get("callback_data")
            if data is not None and not (
                isinstance(data, str) and 1 <= len(data.encode()) <= MAX_CALLBACK_DATA_BYTES
            ):
                raise bad_request("BUTTON_DATA_INVALID")
    return {"inline_keyboard": rows}


def split_reply_markup(markup: Any) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(inline keyboard for the Message, other markup for the chat page), or a Bad Request."""
    if markup is None:
        return None, None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        return _check_inline_keyboard(markup), None
    if markup.get("force_reply") is True or "keyboard" in markup or "remove_keyboard" in markup:
        return None, markup
    raise bad_request("can't parse reply keyboard markup JSON object")


def button_data(message: dict[str, Any]) -> list[str]:
    """Every callback_data on the message's current inline keyboard."""
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [button["callback_data"] for row in rows for button in row if "callback_data" in button]
