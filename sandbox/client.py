"""SandboxClient: drives the sandbox's control API over HTTP (sync, httpx), so a test or another
process can act as a Telegram user and read back what the bot did."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

Message = dict[str, Any]


class SandboxError(RuntimeError):
    """The sandbox refused a control request; the message says why."""


class SandboxTimeout(SandboxError, TimeoutError):
    """What was waited for did not happen in time."""


class SandboxClient:
    """Telegram users (any number, by user_id) talking to the bot through the sandbox.

    A user's private chat has their user_id as its chat_id; pass `chat_id` (negative, a group made
    with `create_group`) to act in a group instead. Threads may share one client (its httpx pool
    is thread-safe), e.g. one waiting on each chat.
    """

    def __init__(self, url: str, timeout: float = 10.0, connect_timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url,
            timeout=httpx.Timeout(connect=connect_timeout, read=timeout, write=timeout, pool=connect_timeout),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SandboxClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, timeout: float | None = None, **kwargs: Any) -> Any:
        extra = {"timeout": timeout} if timeout is not None else {}
        response = self._http.request(method, path, **kwargs, **extra)
        if response.status_code >= 400:
            try:
                description = response.json().get("description", response.text)
            except ValueError:
                description = response.text
            raise SandboxError(f"{method} {path}: {response.status_code} {description}")
        return response.json()

    # -- what a user does ---------------------------------------------------------------------
    def send_photo(self, user_id: int, image_bytes: bytes, caption: str | None = None, *,
                   first_name: str | None = None, chat_id: int | None = None,
                   reply_to_message_id: int | None = None) -> Message:
        """The user sends a photo; returns their Message (photo sizes, thumbnail first; an
        @mention in the caption gets its caption entity)."""
        data = _fields(caption=caption, first_name=first_name, chat_id=chat_id,
                       reply_to_message_id=reply_to_message_id)
        files = {"photo": ("photo.jpg", image_bytes, "image/jpeg")}
        return self._call("POST", f"/sandbox/users/{user_id}/photo", data=data, files=files)

    def send_document(self, user_id: int, data: bytes, filename: str, mime_type: str, *,
                      caption: str | None = None, first_name: str | None = None,
                      chat_id: int | None = None) -> Message:
        """The user sends a file as a document (any size; getFile refuses those over 20 MB)."""
        fields = _fields(filename=filename, mime_type=mime_type, caption=caption,
                         first_name=first_name, chat_id=chat_id)
        files = {"document": (filename, data, mime_type)}
        return self._call("POST", f"/sandbox/users/{user_id}/document", data=fields, files=files)

    def send_text(self, user_id: int, text: str, reply_to_message_id: int | None = None, *,
                  first_name: str | None = None, chat_id: int | None = None) -> Message:
        """The user sends text (a /command gets its bot_command entity, an @username its mention
        entity), maybe as a reply."""
        body = _fields(text=text, reply_to_message_id=reply_to_message_id, first_name=first_name,
                       chat_id=chat_id)
        return self._call("POST", f"/sandbox/users/{user_id}/text", json=body)

    def press_button(self, user_id: int, message_id: int, callback_data: str, *,
                     forge: bool = False, chat_id: int | None = None) -> str:
        """The user presses an inline button; returns the callback query id.

        The data must be on the message's current keyboard unless `forge` is true (a modified
        client can send any data; a test of forged callbacks says so).
        """
        body = _fields(message_id=message_id, callback_data=callback_data, forge=forge,
                       chat_id=chat_id)
        return self._call("POST", f"/sandbox/users/{user_id}/press", json=body)["callback_query_id"]

    # -- groups ---------------------------------------------------------------------------
    def create_group(self, chat_id: int, title: str | None = None, chat_type: str = "group", *,
                     members: dict[int, str] | None = None) -> dict[str, Any]:
        """A group (or supergroup) with the bot in it; `members` maps user ids to their status
        (creator, administrator, member, left, kicked). Users who write in it join as members."""
        group = self._call("POST", "/sandbox/groups",
                           json=_fields(chat_id=chat_id, title=title, type=chat_type))
        for user_id, status in (members or {}).items():
            group = self.set_member_status(chat_id, user_id, status)
        return group

    def set_member_status(self, chat_id: int, user_id: int, status: str) -> dict[str, Any]:
        """The user's status in the group, as getChatMember reports it."""
        return self._call("POST", f"/sandbox/chats/{chat_id}/members",
                          json={"user_id": user_id, "status": status})

    def chat(self, chat_id: int) -> dict[str, Any]:
        """`{"chat": Chat, "members": [{"user", "status"}, ...]}` (no members for a private chat)."""
        return self._call("GET", f"/sandbox/chats/{chat_id}")

    # -- what the bot did ---------------------------------------------------------------------
    def _chat(self, chat_id: int, include_user: bool, after_version: int | None = None,
              wait: float = 0.0) -> dict[str, Any]:
        params: dict[str, Any] = {"all": int(include_user)}
        if after_version is not None:
            params.update(after_version=after_version, timeout=wait)
        return self._call("GET", f"/sandbox/chats/{chat_id}/messages", params=params,
                          timeout=wait + 10.0)

    def messages(self, chat_id: int, *, include_user: bool = False) -> list[Message]:
        """What the bot sent to the chat, in order, with edits applied and deletions gone.

        Each is a Bot API Message dict plus a "sandbox" key with what the Bot API does not return:
        parse_mode, any non-inline reply_markup (e.g. {"force_reply": true}) and sent_at.
        """
        return self._chat(chat_id, include_user)["messages"]

    def wait_for_message(self, chat_id: int, predicate: Callable[[Message], bool] | None = None,
                         timeout: float = 10.0, *, after_message_id: int | None = None) -> Message:
        """The first bot message (oldest first) with message_id > after_message_id for which
        predicate is true, waiting for it (edits count) up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        version: int | None = None
        while True:
            remaining = max(0.0, deadline - time.monotonic())
            state = self._chat(chat_id, False, version, min(remaining, 25.0))
            for message in state["messages"]:
                if after_message_id is not None and message["message_id"] <= after_message_id:
                    continue
                if predicate is None or predicate(message):
                    return message
            if time.monotonic() >= deadline:
                raise SandboxTimeout(
                    f"no matching bot message in chat {chat_id} within {timeout}s; "
                    f"the bot sent: {[m.get('text') or m.get('caption') for m in state['messages']]}"
                )
            version = state["version"]

    def callback_answers(self) -> list[dict[str, Any]]:
        """Every answerCallbackQuery, in order: callback_query_id, user_id, message_id, data,
        text, show_alert, url, cache_time."""
        return self._call("GET", "/sandbox/callback_answers")

    def wait_for_callback_answer(self, callback_query_id: str, timeout: float = 10.0
                                 ) -> dict[str, Any]:
        """The bot's answer to one callback query, waiting for it."""
        deadline = time.monotonic() + timeout
        while True:
            answers = self._call("GET", "/sandbox/callback_answers",
                                 params={"callback_query_id": callback_query_id})
            if answers:
                return answers[0]
            if time.monotonic() >= deadline:
                raise SandboxTimeout(f"callback query {callback_query_id} was not answered")
            time.sleep(0.02)

    def file_bytes(self, file_id: str) -> bytes:
        """The bytes of a file a user or the bot sent (a photo size's file_id, a document's)."""
        response = self._http.get(f"/sandbox/files/{file_id}")
        if response.status_code >= 400:
            raise SandboxError(f"GET /sandbox/files/{file_id}: {response.status_code}")
        return response.content

    def chat_actions(self, chat_id: int) -> list[dict[str, Any]]:
        """sendChatAction calls for the chat: {"action": "typing", "date": unix time}."""
        return self._call("GET", f"/sandbox/chats/{chat_id}/actions")

    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates the bot has not confirmed yet."""
        return self._call("GET", "/sandbox/updates")

    def bot_info(self) -> dict[str, Any]:
        """The bot (getMe), its default commands and description."""
        return self._call("GET", "/sandbox/bot")

    def webhook(self) -> dict[str, Any]:
        """The webhook as getWebhookInfo reports it ("info"), its "replicas" and every delivery
        attempt ("deliveries": update_id, url, HTTP status or None, error)."""
        return self._call("GET", "/sandbox/webhook")

    def set_webhook_replicas(self, urls: list[str]) -> list[str]:
        """Deliver the webhook's updates to these URLs in turn, as a load balancer in front of
        bot replicas would; an empty list delivers to the registered URL again."""
        return self._call("POST", "/sandbox/webhook/replicas", json={"urls": urls})["replicas"]

    def reset(self) -> None:
        """Forget chats, updates, files and answers (update ids keep increasing)."""
        self._call("POST", "/sandbox/reset")


def _fields(**values: Any) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}
