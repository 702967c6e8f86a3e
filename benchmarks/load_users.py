"""Simulated Telegram users for the load and fault benchmark, and the tally of what they got.

Each user sends their photos one at a time through the sandbox's control API: a photo is due at
a fixed overall rate (photo k of user u at (k·users + u) / rate seconds), and not before the
user's previous photo was answered. An answer is a caption (a reply carrying the 👍 👎 ✏️ keyboard)
or a message; a user told to try again sends the same photo again after `retry_after_s`, up to
`max_retries` times. The tally reads every chat back at the end, so it counts what the users
really received, late replies and second captions included, with the sandbox's own timestamps.
"""
from __future__ import annotations

import statistics
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.client import SandboxClient

POLL_INTERVAL_S = 0.3


def is_caption(message: dict[str, Any]) -> bool:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
    return any(str(button.get("callback_data", "")).startswith("r1:") for row in rows for button in row)


def kind_of_message(text: str) -> str:
    """"unexpected" for the bot's generic error, "retry" when told to send again, else "other"."""
    lowered = text.lower()
    if "went wrong" in lowered or "traceback" in lowered:
        return "unexpected"
    if "try again" in lowered or "send it again" in lowered:
        return "retry"
    return "other"


@dataclass
class Photo:
    user_id: int
    index: int
    path: Path
    due: float
    attempts: list[int] = field(default_factory=list)  # the user's message ids, one per try


@dataclass
class User:
    user_id: int
    photos: list[Photo]
    next_photo: int = 0
    in_flight: int | None = None  # message id of the photo awaiting an answer
    retries_used: int = 0
    retry_due: float | None = None
    polled_at: float = 0.0


class Users:
    """Drive the users; call step() often (from one thread) until done()."""

    def __init__(self, client: SandboxClient, photos: list[Path], users: int, per_user: int, rate: float,
                 retry_after_s: float, max_retries: int, first_user_id: int = 1000) -> None:
        self.client = client
        self.retry_after_s = retry_after_s
        self.max_retries = max_retries
        start = time.time()
        self.users = [
            User(first_user_id + u, [Photo(first_user_id + u, k, photos[k * users + u], start + (k * users + u) / rate)
                                     for k in range(per_user)])
            for u in range(users)
        ]
        self.first_sends = 0

    def done(self) -> bool:
        return all(user.next_photo >= len(user.photos) and user.in_flight is None for user in self.users)

    def step(self) -> None:
        now = time.time()
        for user in self.users:
            if user.in_flight is not None:
                if now - user.polled_at >= POLL_INTERVAL_S:
                    user.polled_at = now
                    self._read_answer(user)
            elif user.next_photo < len(user.photos):
                photo = user.photos[user.next_photo]
                due = user.retry_due if user.retry_due is not None else photo.due
                if now >= due:
                    self._send(user, photo)

    def _send(self, user: User, photo: Photo) -> None:
        sent = self.client.send_photo(user.user_id, photo.path.read_bytes())
        if not photo.attempts:
            self.first_sends += 1
        photo.attempts.append(sent["message_id"])
        user.in_flight = sent["message_id"]
        user.polled_at = time.time()

    def _read_answer(self, user: User) -> None:
        answers = [m for m in self.client.messages(user.user_id) if m["message_id"] > user.in_flight]
        if not answers:
            return
        captioned = any(is_caption(m) and _replied_to(m) == user.in_flight for m in answers)
        told = [m for m in answers if not is_caption(m)]
        if not captioned and not told:
            return  # a late caption to an earlier photo; this one is still awaited
        user.in_flight = None
        if not captioned and user.retries_used < self.max_retries:
            user.retries_used += 1
            user.retry_due = time.time() + self.retry_after_s
            return
        user.next_photo += 1
        user.retries_used = 0
        user.retry_due = None


def _replied_to(message: dict[str, Any]) -> int | None:
    return (message.get("reply_to_message") or {}).get("message_id")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


@dataclass
class Tally:
    """What every photo got, read back from the chats."""

    photos: int
    attempts: int
    captioned: int
    told_to_retry: int
    retry_succeeded: int
    unexpected_errors: int
    lost: int
    duplicates: int
    latencies_ms: list[float]
    captions: list[tuple[float, float]]  # (photo sent, caption sent), sandbox clock
    examples: dict[str, list[str]]

    def summary(self) -> dict[str, Any]:
        latencies = self.latencies_ms or [float("nan")]
        return {
            "photos_sent": self.photos,
            "photo_messages_sent_with_retries": self.attempts,
            "captions_delivered": self.captioned,
            "users_told_to_retry": self.told_to_retry,
            "retries_that_succeeded": self.retry_succeeded,
            "unexpected_error_messages": self.unexpected_errors,
            "lost": self.lost,
            "duplicates": self.duplicates,
            "latency_ms": {"p50": round(percentile(latencies, 50), 1), "p95": round(percentile(latencies, 95), 1),
                           "max": round(max(latencies), 1), "mean": round(statistics.fmean(latencies), 1)},
            "examples": self.examples,
        }


def tally(client: SandboxClient, users: Users) -> Tally:
    captions: dict[int, dict[int, list[float]]] = {}  # user -> photo message id -> caption times
    texts: dict[int, dict[int, list[str]]] = {}
    sent_at: dict[int, dict[int, float]] = {}
    for user in users.users:
        captions[user.user_id], texts[user.user_id], sent_at[user.user_id] = _read_chat(client, user.user_id)
    result = Tally(0, 0, 0, 0, 0, 0, 0, 0, [], [], defaultdict(list))
    for user in users.users:
        for photo in user.photos:
            if not photo.attempts:
                continue
            result.photos += 1
            result.attempts += len(photo.attempts)
            caption_count, told = 0, False
            for message_id in photo.attempts:
                got = captions[user.user_id].get(message_id, [])
                said = texts[user.user_id].get(message_id, [])
                caption_count += len(got)
                if got:
                    sent = sent_at[user.user_id][message_id]
                    result.latencies_ms.append((got[0] - sent) * 1000)
                    result.captions.append((sent, got[0]))
                if not got and not said:
                    result.lost += 1
                    result.examples["lost"].append(f"user {user.user_id} message {message_id}")
                for text in said:
                    kind = kind_of_message(text)
                    told = told or kind in ("retry", "unexpected")
                    result.unexpected_errors += kind == "unexpected"
                    if kind != "retry" and len(result.examples[kind]) < 5:
                        result.examples[kind].append(text)
            result.captioned += caption_count > 0
            result.duplicates += caption_count > 1
            result.told_to_retry += told
            result.retry_succeeded += told and caption_count > 0
            if caption_count > 1:
                result.examples["duplicates"].append(f"user {user.user_id} photo {photo.index}")
    result.examples = dict(result.examples)
    return result


def _read_chat(client: SandboxClient, user_id: int) -> tuple[dict, dict, dict]:
    """Caption times and other texts per photo message: a bot text answers the photo it replies
    to, or else the user's latest photo before it (a user has one photo in flight at a time)."""
    captions: dict[int, list[float]] = defaultdict(list)
    texts: dict[int, list[str]] = defaultdict(list)
    sent_at: dict[int, float] = {}
    latest_photo: int | None = None
    for message in client.messages(user_id, include_user=True):
        stamp = message["sandbox"]["sent_at"]
        if message.get("photo") and message["from"]["id"] == user_id:
            latest_photo = message["message_id"]
            sent_at[latest_photo] = stamp
        elif is_caption(message):
            captions[_replied_to(message)].append(stamp)
        elif latest_photo is not None or _replied_to(message) is not None:
            texts[_replied_to(message) or latest_photo].append(message.get("text") or "")
    return captions, texts, sent_at
