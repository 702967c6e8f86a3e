"""The sandbox's own surface: Telegram's envelope over raw HTTP (JSON, form and query bodies),
Telegram's refusals, the control API's waits and reset, the chat page, `captionbot sandbox`."""
from __future__ import annotations

import os
import re
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import httpx
import pytest
from sandbox_helpers import jpeg_bytes

from sandbox import SandboxServer
from sandbox.client import SandboxError, SandboxTimeout

USER = 777
REPO_ROOT = Path(__file__).resolve().parents[2]


def call(sandbox, method: str, **kwargs) -> httpx.Response:
    return httpx.post(f"{sandbox.api_base}{sandbox.token}/{method}", **kwargs)


def test_json_form_and_query_parameters_all_reach_the_method(sandbox, client):
    client.send_text(USER, "hi")
    by_json = call(sandbox, "sendMessage", json={"chat_id": USER, "text": "json"}).json()
    by_form = call(sandbox, "sendMessage", data={"chat_id": str(USER), "text": "form"}).json()
    by_query = httpx.get(f"{sandbox.api_base}{sandbox.token}/sendMessage",
                         params={"chat_id": USER, "text": "query"}).json()
    assert [r["ok"] for r in (by_json, by_form, by_query)] == [True, True, True]
    assert [m["text"] for m in client.messages(USER)] == ["json", "form", "query"]


def test_refusals_use_telegrams_error_envelope(sandbox, client):
    response = call(sandbox, "sendMessage", json={"chat_id": 1, "text": "x"})
    assert response.status_code == 400
    assert response.json() == {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}
    client.send_text(USER, "hi")
    cases = {
        "can't parse entities": {"text": "<b>bold", "parse_mode": "HTML"},
        "BUTTON_DATA_INVALID": {"text": "x", "reply_markup": {"inline_keyboard": [[
            {"text": "long", "callback_data": "x" * 65}]]}},
        "message text is empty": {"text": "  "},
        "message is too long": {"text": "x" * 4097},
    }
    for description, body in cases.items():
        answer = call(sandbox, "sendMessage", json={"chat_id": USER, **body}).json()
        assert answer["ok"] is False and description in answer["description"]
    assert call(sandbox, "sendChatAction", json={"chat_id": USER, "action": "dancing"}).status_code == 400
    assert httpx.get(f"{sandbox.url}/file/bot{sandbox.token}/photos/none.jpg").status_code == 404


def test_wait_for_message_returns_when_the_bot_sends_and_times_out_with_what_it_saw(sandbox, client):
    client.send_text(USER, "hi")
    later = threading.Timer(0.4, call, args=(sandbox, "sendMessage"),
                            kwargs={"json": {"chat_id": USER, "text": "late reply"}})
    started = time.monotonic()
    later.start()
    message = client.wait_for_message(USER, lambda m: m["text"] == "late reply", timeout=10)
    later.join()
    assert message["text"] == "late reply" and time.monotonic() - started < 3
    with pytest.raises(SandboxTimeout, match="late reply"):
        client.wait_for_message(USER, lambda m: m["text"] == "never", timeout=0.5)
    with pytest.raises(SandboxTimeout):
        client.wait_for_message(USER, timeout=0.3, after_message_id=message["message_id"])


def test_a_chats_long_poll_answers_only_to_what_it_shows_changing(sandbox, client):
    other = USER + 1
    client.send_text(USER, "hi")
    client.send_text(other, "hi")
    version = httpx.get(f"{sandbox.url}/sandbox/chats/{USER}/messages").json()["version"]

    def wait(all_messages: int) -> tuple[float, dict]:
        started = time.monotonic()
        answer = httpx.get(f"{sandbox.url}/sandbox/chats/{USER}/messages", timeout=10,
                           params={"all": all_messages, "after_version": version, "timeout": 1.5}).json()
        return time.monotonic() - started, answer

    def later(seconds: float, method: str, body: dict) -> threading.Timer:
        timer = threading.Timer(seconds, call, args=(sandbox, method), kwargs={"json": body})
        timer.start()
        return timer

    # Another chat's message and this chat's chat action leave the bot's messages as they were.
    timers = [later(0.2, "sendMessage", {"chat_id": other, "text": "elsewhere"}),
              later(0.3, "sendChatAction", {"chat_id": USER, "action": "typing"})]
    elapsed, answer = wait(0)
    assert elapsed >= 1.4 and answer["messages"] == []
    # The chat page's view (all=1) shows the action, so that wakes it.
    elapsed, answer = wait(1)
    assert elapsed < 1 and answer["last_action"]["action"] == "typing"
    timers.append(later(0.2, "sendMessage", {"chat_id": USER, "text": "here"}))
    elapsed, answer = wait(0)
    assert elapsed < 1.4 and [m["text"] for m in answer["messages"]] == ["here"]
    for timer in timers:
        timer.join()


def test_a_huge_or_corrupt_photo_still_arrives_with_what_its_header_says(sandbox, client):
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0))
    [huge] = client.send_photo(USER, bomb)["photo"]
    [corrupt] = client.send_photo(USER, b"\xff\xd8\xff not a jpeg")["photo"]
    assert (huge["width"], huge["height"], huge["file_size"]) == (30000, 30000, len(bomb))
    assert (corrupt["width"], corrupt["height"]) == (0, 0)


def test_messages_include_the_users_side_on_request(sandbox, client):
    sent = client.send_photo(USER, jpeg_bytes(), caption="look")
    call(sandbox, "sendMessage", json={"chat_id": USER, "text": "nice"})
    conversation = client.messages(USER, include_user=True)
    assert [m["message_id"] for m in conversation] == [sent["message_id"], sent["message_id"] + 1]
    assert conversation[0]["caption"] == "look" and client.messages(USER)[0]["text"] == "nice"


def test_reset_forgets_chats_but_update_ids_keep_growing(sandbox, client):
    client.send_text(USER, "before")
    first_id = client.pending_updates()[-1]["update_id"]
    client.reset()
    assert client.pending_updates() == [] and client.messages(USER) == []
    client.send_text(USER, "after")
    assert client.pending_updates()[-1]["update_id"] > first_id


def test_pressing_a_button_of_a_missing_message_is_refused(sandbox, client):
    client.send_text(USER, "hi")
    with pytest.raises(SandboxError, match="no bot message"):
        client.press_button(USER, 999, "anything", forge=True)


def test_stop_answers_a_waiting_long_poll_at_once():
    server = SandboxServer().start()
    result: dict = {}

    def poll() -> None:
        started = time.monotonic()
        result["response"] = call(server, "getUpdates", json={"timeout": 30}, timeout=40)
        result["elapsed"] = time.monotonic() - started

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.3)
    server.stop()
    poller.join(timeout=10)
    assert result["response"].json() == {"ok": True, "result": []} and result["elapsed"] < 5


def test_a_taken_port_is_a_clear_error_at_start(sandbox):
    with pytest.raises(RuntimeError, match="address already in use"):
        SandboxServer(port=sandbox.port).start()


def test_chat_page_is_served_with_its_own_assets_only(sandbox, client):
    page = httpx.get(sandbox.url + "/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(asset.startswith("/static/") for asset in assets)
    for asset in assets:
        body = httpx.get(sandbox.url + asset)
        assert body.status_code == 200
        assert not re.search(r"(?:url\(|import |src=)[\"']?https?://", body.text)
    sent = client.send_photo(USER, jpeg_bytes())
    image = httpx.get(f"{sandbox.url}/sandbox/files/{sent['photo'][-1]['file_id']}")
    assert image.headers["content-type"] == "image/jpeg" and image.content == jpeg_bytes()
    assert client.bot_info()["bot"]["first_name"] == "CaptionBot"


def test_captionbot_sandbox_serves_until_terminated_and_prints_its_address(tmp_path):
    env = {**os.environ, "SANDBOX_PORT": "0", "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "captionbot.cli", "sandbox"], cwd=tmp_path,
                               env=env, stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        url = re.search(r"http://[\d.]+:\d+", line).group(0)
        assert "Sandbox" in httpx.get(url + "/").text or httpx.get(url + "/").status_code == 200
        assert httpx.get(f"{url}/bot123456:sandbox/getMe").json()["ok"] is True
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
