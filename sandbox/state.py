"""The sandbox's world: users, their private chats with the bot and the groups they share with it,
the messages in them (with edits applied), the update queue the bot polls, files, callback
queries and their answers.

All of it lives on the server's event loop; the Bot API and the control API are two views of it.
Messages are kept as Bot API Message dicts plus a "sandbox" key with what the Bot API does not
return (the parse mode, a ForceReply or reply keyboard markup); `public()` strips that key.
"""
from __future__ import annotations

import asyncio
import copy
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from sandbox.media import (
    THUMBNAIL_SIDE,
    StoredFile,
    extension_for,
    file_id_for,
    image_size,
    make_thumbnail,
    photo_size,
    unique_id_for,
)
from sandbox.members import MEMBER_STATUSES, chat_member
from sandbox.params import BotApiError, bad_request
from sandbox.webhook_registration import WebhookRegistration

CONFLICT = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)


STATE: web.AppKey[SandboxState] = web.AppKey("sandbox_state")


def public(message: dict[str, Any]) -> dict[str, Any]:
    """The message as the Bot API returns it."""
    out = {key: value for key, value in message.items() if key != "sandbox"}
    if "reply_to_message" in out:
        out["reply_to_message"] = public(out["reply_to_message"])
    return out


def now() -> int:
    return int(time.time())


GROUP_TYPES = ("group", "supergroup")


@dataclass
class ChatRecord:
    """One chat with the bot: a user's private chat, or a group whose members' statuses it keeps."""

    chat: dict[str, Any]
    user: dict[str, Any] | None  # the private chat's user; None for a group
    statuses: dict[int, str] = field(default_factory=dict)  # group members: user id -> status
    messages: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    message_ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    version: int = 0  # the sandbox's version at this chat's last change
    bot_version: int = 0  # ... and at the last change to the bot's messages in it

    def find(self, message_id: int) -> dict[str, Any] | None:
        for message in self.messages:
            if message["message_id"] == message_id:
                return message
        return None


class SandboxState:
    """Everything the sandbox remembers, and the long-poll signalling around it."""

    def __init__(self, token: str, bot_first_name: str, bot_username: str) -> None:
        self.token = token
        self.bot_user: dict[str, Any] = {
            "id": int(token.split(":", 1)[0]) if token.split(":", 1)[0].isdigit() else 1,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
            "can_join_groups": True,
            # The sandbox delivers every group message, as Telegram does with privacy mode off.
            "can_read_all_group_messages": True,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self.commands: dict[str, list[dict[str, str]]] = {}
        self.description = ""
        self.short_description = ""
        self.webhook = WebhookRegistration()  # the bot's setting, like its commands: kept by reset()
        self._update_ids = itertools.count(1)  # never restarts, so a bot's offset stays valid
        self.closing = False
        self.version = 0
        self.reset_version = 0
        self._event: asyncio.Event | None = None
        self._chat_events: dict[int, asyncio.Event] = {}  # chat id -> wakes the waits on it
        self.reset()

    def reset(self) -> None:
        """Forget chats, updates, files and answers; keep the bot's identity and commands."""
        self.chats: dict[int, ChatRecord] = {}
        self.users: dict[int, dict[str, Any]] = {}
        self.updates: list[dict[str, Any]] = []
        self.allowed_updates: list[str] | None = None
        self.files: dict[str, StoredFile] = {}
        self.files_by_path: dict[str, StoredFile] = {}
        self.photo_sizes: dict[str, list[dict[str, Any]]] = {}  # any size's file_id -> all sizes
        self.documents: dict[str, dict[str, Any]] = {}  # file_id -> Document
        self.callback_queries: dict[str, dict[str, Any]] = {}
        self.callback_answers: list[dict[str, Any]] = []
        self.poll_generation = 0
        self._query_ids = itertools.count(4_000_000_000_000_001)
        self._file_numbers = itertools.count(1)
        self.changed()
        self.reset_version = self.version  # every chat changed: its waits answer
        self._wake_chats()

    # -- signalling ---------------------------------------------------------------------------
    def changed(self, record: ChatRecord | None = None, bot_message: bool = False) -> None:
        """Record a change and wake the long polls on the whole sandbox (getUpdates, webhook
        delivery) and, when the change is in a chat, the control API's waits on that chat only,
        so a change in one chat does not send every other chat's watcher a fresh copy.
        `bot_message`: the change sent, edited or deleted one of the bot's messages."""
        self.version += 1
        if record is not None:
            record.version = self.version
            if bot_message:
                record.bot_version = self.version
            event = self._chat_events.pop(record.chat["id"], None)
            if event is not None:
                event.set()
        self._wake()

    def _wake_chats(self) -> None:
        events, self._chat_events = self._chat_events, {}
        for event in events.values():
            event.set()

    def _wake(self) -> None:
        if self._event is not None:
            self._event.set()
        self._event = asyncio.Event()

    async def wait_for_change(self, timeout: float) -> None:
        if self._event is None:
            self._event = asyncio.Event()
        event = self._event
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass

    def chat_version(self, chat_id: int, bot_messages: bool = False) -> int:
        """The version of the chat's last change, or of the last change to the bot's messages in
        it (a reset changes every chat)."""
        record = self.chats.get(chat_id)
        if record is None:
            return self.reset_version
        return max(self.reset_version, record.bot_version if bot_messages else record.version)

    async def wait_for_chat_change(self, chat_id: int, after: int, timeout: float,
                                   bot_messages: bool = False) -> None:
        """Return once the chat (or, with `bot_messages`, the bot's messages in it) changed after
        version `after`, the sandbox closes or `timeout` seconds pass; changes in other chats do
        not wake it."""
        deadline = time.monotonic() + timeout
        while self.chat_version(chat_id, bot_messages) <= after and not self.closing:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            event = self._chat_events.setdefault(chat_id, asyncio.Event())
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                pass

    def close(self) -> None:
        self.closing = True
        self._wake()
        self._wake_chats()

    # -- users, chats, files ------------------------------------------------------------------
    def ensure_user(self, user_id: int, first_name: str | None = None,
                    username: str | None = None) -> dict[str, Any]:
        user = self.users.get(user_id)
        if user is None:
            user = self.users[user_id] = {
                "id": user_id,
                "is_bot": False,
                "first_name": first_name or f"Tester {user_id}",
                "username": username or f"tester{user_id}",
                "language_code": "en",
            }
        return user

    def ensure_chat(self, user_id: int, first_name: str | None = None,
                    username: str | None = None) -> ChatRecord:
        """The user's private chat with the bot (its id is the user's id)."""
        record = self.chats.get(user_id)
        if record is None:
            user = self.ensure_user(user_id, first_name, username)
            chat = {"id": user_id, "type": "private", "first_name": user["first_name"],
                    "username": user["username"]}
            record = self.chats[user_id] = ChatRecord(chat=chat, user=user)
        return record

    def ensure_group(self, chat_id: int, title: str | None = None,
                     chat_type: str = "group") -> ChatRecord:
        """A group or supergroup with the bot in it; ids are negative, as Telegram's are."""
        if chat_id >= 0:
            raise bad_request("a group's chat_id must be negative")
        if chat_type not in GROUP_TYPES:
            raise bad_request(f"chat type must be one of {GROUP_TYPES}")
        record = self.chats.get(chat_id)
        if record is None:
            chat = {"id": chat_id, "type": chat_type, "title": title or f"Group {-chat_id}"}
            record = self.chats[chat_id] = ChatRecord(chat=chat, user=None)
            self.changed(record)
        elif record.user is not None:
            raise bad_request("that chat is a private chat")
        return record

    def set_member(self, record: ChatRecord, user: dict[str, Any], status: str) -> None:
        if record.user is not None:
            raise bad_request("members belong to groups; that chat is a private chat")
        if status not in MEMBER_STATUSES:
            raise bad_request(f"status must be one of {MEMBER_STATUSES}")
        record.statuses[user["id"]] = status
        self.changed(record)

    def sender_chat(self, user_id: int, chat_id: int | None, first_name: str | None = None,
                    username: str | None = None) -> tuple[ChatRecord, dict[str, Any]]:
        """Where a user's message goes, and its sender: their private chat, or a group they join
        as a member if they were not in it (a left or banned user cannot write there)."""
        if chat_id is None or chat_id == user_id:
            record = self.ensure_chat(user_id, first_name, username)
            return record, record.user
        record = self.chat(chat_id)
        if record.user is not None:
            raise bad_request("that is another user's private chat")
        user = self.ensure_user(user_id, first_name, username)
        status = record.statuses.get(user_id)
        if status in ("left", "kicked"):
            raise bad_request(f"user {user_id} is not a member of that group ({status})")
        if status is None:
            self.set_member(record, user, "member")
        return record, user

    def member(self, chat_id: int | None, user_id: int | None) -> dict[str, Any]:
        """getChatMember: the user's ChatMember in that chat."""
        record = self.chat(chat_id)
        if user_id == self.bot_user["id"]:
            return chat_member(self.bot_user, "administrator" if record.user is None else "member")
        user = self.users.get(user_id or 0)
        if user is None:
            raise bad_request("user not found")
        if record.user is not None:
            status = "member" if record.user["id"] == user_id else "left"
        else:
            status = record.statuses.get(user["id"], "left")
        return chat_member(user, status)

    def chat(self, chat_id: int | None) -> ChatRecord:
        record = self.chats.get(chat_id) if chat_id is not None else None
        if record is None:
            raise bad_request("chat not found")
        return record

    def store_file(self, data: bytes, kind: str, mime_type: str | None = None,
                   filename: str | None = None) -> StoredFile:
        file_id = file_id_for(data, kind)
        existing = self.files.get(file_id)
        if existing is not None:
            return existing
        folder = "photos" if kind == "photo" else "documents"
        extension = "jpg" if kind == "photo" else extension_for(mime_type, filename)
        path = f"{folder}/file_{next(self._file_numbers)}.{extension}"
        stored = StoredFile(file_id, unique_id_for(data), path, data)
        self.files[file_id] = stored
        self.files_by_path[path] = stored
        return stored

    def store_photo(self, data: bytes) -> list[dict[str, Any]]:
        """PhotoSize entries as Telegram sends them: a thumbnail, then the full image, last."""
        width, height = image_size(data) or (0, 0)
        full = self.store_file(data, "photo")
        sizes = []
        if max(width, height) > THUMBNAIL_SIDE and (thumb := make_thumbnail(data)) is not None:
            thumb_bytes, thumb_width, thumb_height = thumb
            sizes.append(photo_size(self.store_file(thumb_bytes, "photo"), thumb_width, thumb_height))
        sizes.append(photo_size(full, width, height))
        for size in sizes:
            self.photo_sizes[size["file_id"]] = sizes
        return copy.deepcopy(sizes)

    def store_document(self, data: bytes, filename: str, mime_type: str) -> dict[str, Any]:
        """A Document dict; images get a thumbnail, as Telegram gives them."""
        stored = self.store_file(data, "document", mime_type, filename)
        document: dict[str, Any] = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_name": filename,
            "mime_type": mime_type,
            "file_size": stored.size,
        }
        if mime_type.startswith("image/") and (thumb := make_thumbnail(data)) is not None:
            thumb_bytes, width, height = thumb
            document["thumbnail"] = photo_size(self.store_file(thumb_bytes, "photo"), width, height)
        self.documents[stored.file_id] = document
        return copy.deepcopy(document)

    def file(self, file_id: str | None) -> StoredFile:
        stored = self.files.get(file_id or "")
        if stored is None:
            raise bad_request("wrong file identifier/HTTP URL specified")
        return stored

    # -- messages -----------------------------------------------------------------------------
    def add_message(self, record: ChatRecord, sender: dict[str, Any], content: dict[str, Any],
                    reply_to: int | None = None, allow_without_reply: bool = False,
                    extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Append a message to a chat; `reply_to` embeds the replied message as Telegram does."""
        message: dict[str, Any] = {
            "message_id": next(record.message_ids),
            "from": copy.deepcopy(sender),
            "chat": copy.deepcopy(record.chat),
            "date": now(),
        }
        if reply_to is not None:
            original = record.find(reply_to)
            if original is not None:
                embedded = {k: v for k, v in original.items() if k != "reply_to_message"}
                message["reply_to_message"] = copy.deepcopy(embedded)
            elif not allow_without_reply:
                raise bad_request("message to be replied not found")
        message.update(content)
        message["sandbox"] = {**(extra or {}), "sent_at": time.time()}
        record.messages.append(message)
        self.changed(record, bot_message=sender["is_bot"])
        return message

    def bot_message(self, chat_id: int | None, message_id: int | None,
                    missing: str = "message to edit not found") -> tuple[ChatRecord, dict[str, Any]]:
        record = self.chat(chat_id)
        message = record.find(message_id) if message_id is not None else None
        if message is None:
            raise bad_request(missing)
        return record, message

    def delete_message(self, chat_id: int | None, message_id: int | None) -> None:
        record, message = self.bot_message(chat_id, message_id, "message to delete not found")
        record.messages.remove(message)
        self.changed(record, bot_message=message["from"]["is_bot"])

    def add_action(self, chat_id: int | None, action: str) -> None:
        record = self.chat(chat_id)
        record.actions.append({"action": action, "date": time.time()})
        self.changed(record)

    # -- updates ------------------------------------------------------------------------------
    def push_update(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": next(self._update_ids), kind: copy.deepcopy(public(payload))}
        self.updates.append(update)
        self.changed()
        return update

    def confirm(self, offset: int | None) -> None:
        """Telegram's offset: drop updates below it; a negative one keeps only the last -offset."""
        if offset is None or offset == 0:
            return
        if offset > 0:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        else:
            self.updates = self.updates[offset:]

    def drop_pending(self) -> None:
        self.updates = []

    def deliverable(self, limit: int) -> list[dict[str, Any]]:
        if self.allowed_updates:
            allowed = set(self.allowed_updates)
            self.updates = [u for u in self.updates if (u.keys() - {"update_id"}) & allowed]
        return copy.deepcopy(self.updates[:limit])

    async def get_updates(self, offset: int | None, limit: int, timeout: float,
                          allowed_updates: list[str] | None) -> list[dict[str, Any]]:
        """A real long poll: returns as soon as an update is there, else after `timeout`.

        A newer getUpdates call ends a waiting one with 409 Conflict, as Telegram does.
        """
        self.poll_generation += 1
        generation = self.poll_generation
        self._wake()  # an older poll wakes up and sees the conflict
        self.confirm(offset)
        if allowed_updates is not None:
            self.allowed_updates = list(allowed_updates) or None
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            if generation != self.poll_generation:
                raise BotApiError(CONFLICT, 409)
            batch = self.deliverable(limit)
            remaining = deadline - time.monotonic()
            if batch or self.closing or remaining <= 0:
                return batch
            await self.wait_for_change(remaining)

    # -- callback queries ---------------------------------------------------------------------
    def new_callback_query(self, record: ChatRecord, user: dict[str, Any],
                           message: dict[str, Any], data: str) -> dict[str, Any]:
        query = {
            "id": str(next(self._query_ids)),
            "from": copy.deepcopy(user),
            "message": public(message),
            "chat_instance": str(-7_000_000_000_000_000 - record.chat["id"]),
            "data": data,
        }
        self.callback_queries[query["id"]] = {"query": query, "answered": False}
        return query

    def answer_callback(self, query_id: str | None, answer: dict[str, Any]) -> None:
        entry = self.callback_queries.get(query_id or "")
        if entry is None or entry["answered"]:
            raise bad_request("query is too old and response timeout expired or query ID is invalid")
        entry["answered"] = True
        query = entry["query"]
        self.callback_answers.append({
            "callback_query_id": query["id"],
            "user_id": query["from"]["id"],
            "message_id": query["message"]["message_id"],
            "data": query["data"],
            "date": time.time(),
            **answer,
        })
        self.changed()
