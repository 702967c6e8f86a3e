"""The few Bot API calls a worker makes (getFile, file download, sendMessage), each with a timeout.

Errors come in two kinds, because they are handled in two ways: `BotApiUnavailable` (network
trouble, 5xx, 429) is worth retrying; `BotApiRejected` (a 4xx answer) will not get better.
"""
from __future__ import annotations

import json
import logging
from typing import Any

import httpx

log = logging.getLogger(__name__)


class BotApiError(Exception):
    """A Bot API call that did not succeed."""


class BotApiUnavailable(BotApiError):
    """Telegram (or the network to it) is down or overloaded: try again later."""


class BotApiRejected(BotApiError):
    """Telegram refused the call (bad file id, chat gone): retrying will not help."""


class FileTooLarge(BotApiRejected):
    """The file is bigger than the worker may download."""


class BotApiClient:
    """A small synchronous Bot API client; one per worker process, connections reused."""

    def __init__(self, api_url: str, token: str, timeout_s: float, connect_timeout_s: float = 5.0) -> None:
        api_url = api_url.rstrip("/")
        self._method_base = f"{api_url}/bot{token}"
        self._file_base = f"{api_url}/file/bot{token}"
        # Reading and writing get timeout_s each (a photo download is streamed in chunks, each
        # within it); connecting and waiting for a pooled connection get the shorter one.
        self._http = httpx.Client(
            timeout=httpx.Timeout(connect=connect_timeout_s, read=timeout_s, write=timeout_s, pool=connect_timeout_s)
        )

    def close(self) -> None:
        self._http.close()

    def call(self, method: str, payload: dict[str, Any]) -> Any:
        """POST a method with a JSON body; returns its `result`."""
        try:
            response = self._http.post(f"{self._method_base}/{method}", json=payload)
        except httpx.HTTPError as error:
            raise BotApiUnavailable(f"{method}: {error!r}") from error
        return _result_of(method, response)

    def download_file(self, file_id: str, max_bytes: int) -> bytes:
        """getFile, then stream the file, refusing anything over `max_bytes` before it is read."""
        info = self.call("getFile", {"file_id": file_id})
        size = info.get("file_size")
        if size is not None and size > max_bytes:
            raise FileTooLarge(f"the file is {size} bytes, more than {max_bytes}")
        if not info.get("file_path"):
            raise BotApiRejected("getFile returned no file_path")
        try:
            with self._http.stream("GET", f"{self._file_base}/{info['file_path']}") as response:
                if response.status_code >= 500:
                    raise BotApiUnavailable(f"file download: HTTP {response.status_code}")
                if response.status_code != 200:
                    raise BotApiRejected(f"file download: HTTP {response.status_code}")
                chunks: list[bytes] = []
                received = 0
                for chunk in response.iter_bytes():
                    received += len(chunk)
                    if received > max_bytes:
                        raise FileTooLarge(f"the file is more than {max_bytes} bytes")
                    chunks.append(chunk)
        except httpx.HTTPError as error:
            raise BotApiUnavailable(f"file download: {error!r}") from error
        return b"".join(chunks)

    def send_message(
        self,
        chat_id: int,
        text: str,
        reply_to_message_id: int | None = None,
        reply_markup: dict | None = None,
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {"chat_id": chat_id, "text": text}
        if reply_to_message_id is not None:
            # The user may have deleted their photo meanwhile; the answer still goes out.
            payload["reply_parameters"] = {
                "message_id": reply_to_message_id,
                "allow_sending_without_reply": True,
            }
        if reply_markup is not None:
            payload["reply_markup"] = reply_markup
        return self.call("sendMessage", payload)

    def delete_message(self, chat_id: int, message_id: int) -> None:
        self.call("deleteMessage", {"chat_id": chat_id, "message_id": message_id})

    def edit_message_text(self, chat_id: int, message_id: int, text: str, parse_mode: str | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {"chat_id": chat_id, "message_id": message_id, "text": text}
        if parse_mode is not None:
            payload["parse_mode"] = parse_mode
        return self.call("editMessageText", payload)

    def send_photo(self, chat_id: int, photo: bytes, filename: str, caption: str | None = None,
                   reply_to_message_id: int | None = None) -> dict[str, Any]:
        """Upload a picture (multipart, as the Bot API wants new files; other fields as JSON text)."""
        data = {"chat_id": str(chat_id)}
        if caption:
            data["caption"] = caption
        if reply_to_message_id is not None:
            data["reply_parameters"] = json.dumps({"message_id": reply_to_message_id, "allow_sending_without_reply": True})
        try:
            response = self._http.post(
                f"{self._method_base}/sendPhoto", data=data, files={"photo": (filename, photo, "image/png")}
            )
        except httpx.HTTPError as error:
            raise BotApiUnavailable(f"sendPhoto: {error!r}") from error
        return _result_of("sendPhoto", response)


def _result_of(method: str, response: httpx.Response) -> Any:
    if response.status_code >= 500 or response.status_code == 429:
        raise BotApiUnavailable(f"{method}: HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError as error:
        raise BotApiUnavailable(f"{method}: HTTP {response.status_code}, not JSON") from error
    if response.status_code != 200 or not body.get("ok"):
        raise BotApiRejected(f"{method}: {body.get('description', response.status_code)}")
    return body["result"]
