"""What the bot counts for Prometheus (served on METRICS_PORT by service.health_server).

Updates by kind and how long their handlers took, refusals by reason, and 👍/👎 by the model
version that wrote the caption: the dashboard's 👍 share per version is
`rate(up) / rate(up + down)` of `captionbot_bot_ratings_total` (a changed rating counts again).
"""
from __future__ import annotations

from prometheus_client import Counter, Histogram
from telegram import Update

HANDLER_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
REFUSAL_REASONS = (
    "rate_limited", "file_too_big", "unsupported_format", "button_rate_limited", "stale_button",
    "text_rate_limited", "correction_empty", "correction_too_long", "correction_rate_limited",
)
# Non-message updates named by their field; anything else is "other".
_OTHER_KINDS = ("edited_message", "my_chat_member", "chat_member", "channel_post", "inline_query")

UPDATES = Counter("captionbot_bot_updates_total", "Updates received, by kind", ["kind"])
HANDLER_SECONDS = Histogram(
    "captionbot_bot_handler_seconds", "Time to handle one update, by kind", ["kind"], buckets=HANDLER_BUCKETS
)
REFUSALS = Counter("captionbot_bot_refusals_total", "Requests refused with a message, by reason", ["reason"])
RATINGS = Counter(
    "captionbot_bot_ratings_total", "👍 and 👎 presses stored, by the model version of the caption", ["model_version", "rating"]
)

for _reason in REFUSAL_REASONS:
    REFUSALS.labels(_reason)


def update_kind(update: object) -> str:
    """photo, document, command, text, other_message, callback_query, or the update's field name."""
    if not isinstance(update, Update):
        return "other"
    if update.callback_query is not None:
        return "callback_query"
    message = update.message
    if message is not None:
        if message.photo:
            return "photo"
        if message.document is not None:
            return "document"
        if message.text:
            return "command" if message.text.startswith("/") else "text"
        return "other_message"
    return next((kind for kind in _OTHER_KINDS if getattr(update, kind, None) is not None), "other")


def refused(reason: str) -> None:
    REFUSALS.labels(reason).inc()


def rated(model_version: str, rating: str) -> None:
    RATINGS.labels(model_version, rating).inc()
