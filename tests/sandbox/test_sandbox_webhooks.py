"""The sandbox's webhooks as python-telegram-bot's Bot sees them (setWebhook, getWebhookInfo,
deleteWebhook, getUpdates' conflict) and its deliveries as a plain HTTP receiver sees them."""
from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sandbox_helpers import make_bot
from telegram.error import BadRequest, Conflict

from sandbox.client import SandboxError
from service_stack import wait_until

USER = 4343
SECRET = "s3cret-Token_1"


class Receiver:
    """An HTTP server that records each POST (path, secret header, update) and answers with the
    next of `statuses` (200 once they run out)."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.posts: list[dict] = []
        self.statuses = list(statuses or [])
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.posts.append({
                    "path": self.path,
                    "secret": self.headers.get("X-Telegram-Bot-Api-Secret-Token"),
                    "content_type": self.headers.get("Content-Type"),
                    "update": json.loads(body),
                })
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def update_ids(self) -> list[int]:
        return [post["update"]["update_id"] for post in self.posts]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers():
    made: list[Receiver] = []

    def make(statuses: list[int] | None = None) -> Receiver:
        made.append(Receiver(statuses))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


def call_bot(sandbox, method: str, **kwargs):
    async def body():
        async with make_bot(sandbox) as bot:
            return await getattr(bot, method)(**kwargs)

    return asyncio.run(body())


def test_a_set_webhook_gets_each_update_posted_with_the_secret_and_get_updates_conflicts(sandbox, client, receivers):
    receiver = receivers()
    assert call_bot(sandbox, "set_webhook", url=receiver.url, secret_token=SECRET)
    sent = client.send_text(USER, "hello over a webhook")

    wait_until(lambda: receiver.posts, timeout=10, what="the update's POST")
    post = receiver.posts[0]
    assert post["path"] == "/hook" and post["secret"] == SECRET and post["content_type"] == "application/json"
    assert post["update"]["message"]["message_id"] == sent["message_id"]
    assert post["update"]["message"]["text"] == "hello over a webhook"
    info = call_bot(sandbox, "get_webhook_info")
    assert info.url == receiver.url and info.pending_update_count == 0 and info.last_error_date is None
    with pytest.raises(Conflict, match="webhook is active"):
        call_bot(sandbox, "get_updates", timeout=0)


def test_a_refused_delivery_is_kept_retried_until_answered_and_reported_in_webhook_info(sandbox, client, receivers):
    receiver = receivers(statuses=[500, 403])
    call_bot(sandbox, "set_webhook", url=receiver.url, secret_token=SECRET)
    client.send_text(USER, "try again")

    wait_until(lambda: len(receiver.posts) == 3, timeout=10, what="two refusals and a delivery")
    assert len(set(receiver.update_ids())) == 1
    attempts = client.webhook()["deliveries"]
    assert [attempt["status"] for attempt in attempts] == [500, 403, 200]
    info = call_bot(sandbox, "get_webhook_info")
    assert info.pending_update_count == 0
    assert "403" in info.last_error_message and info.last_error_date is not None


def test_replicas_get_the_updates_in_turn_each_update_once(sandbox, client, receivers):
    first, second = receivers(), receivers()
    call_bot(sandbox, "set_webhook", url="https://bots.example/hook", secret_token=SECRET)
    assert client.set_webhook_replicas([first.url, second.url]) == [first.url, second.url]
    sent = [client.send_text(USER, f"message {n}")["message_id"] for n in range(6)]

    wait_until(lambda: len(first.posts) + len(second.posts) == 6, timeout=10, what="six deliveries")
    assert len(first.posts) == len(second.posts) == 3
    delivered = sorted(first.update_ids() + second.update_ids())
    assert len(set(delivered)) == 6
    by_message = {post["update"]["message"]["message_id"] for post in first.posts + second.posts}
    assert by_message == set(sent)
    assert all(post["secret"] == SECRET for post in first.posts + second.posts)


def test_a_replica_that_does_not_answer_leaves_its_update_to_the_next_one(sandbox, client, receivers):
    alive = receivers()
    gone = receivers()
    gone.close()
    call_bot(sandbox, "set_webhook", url="https://bots.example/hook", secret_token=SECRET)
    client.set_webhook_replicas([gone.url, alive.url])
    sent = [client.send_text(USER, f"message {n}")["message_id"] for n in range(3)]

    wait_until(lambda: len(alive.posts) == 3, timeout=10, what="the live replica to get all three")
    assert [post["update"]["message"]["message_id"] for post in alive.posts] == sent
    failed = [a for a in client.webhook()["deliveries"] if a["status"] is None]
    assert failed and all(a["url"] == gone.url and "Connection failed" in a["error"] for a in failed)


def test_delete_webhook_stops_the_posts_and_get_updates_works_again(sandbox, client, receivers):
    receiver = receivers()
    call_bot(sandbox, "set_webhook", url=receiver.url, secret_token=SECRET)
    assert call_bot(sandbox, "delete_webhook")
    client.send_text(USER, "poll me")

    updates = call_bot(sandbox, "get_updates", timeout=1)
    assert [u.message.text for u in updates] == ["poll me"]
    assert receiver.posts == [] and call_bot(sandbox, "get_webhook_info").url == ""


def test_set_webhook_refuses_a_bad_secret_a_url_that_is_not_http_and_bad_replicas(sandbox, client):
    with pytest.raises(BadRequest, match="secret token contains unallowed characters"):
        call_bot(sandbox, "set_webhook", url="https://bots.example/hook", secret_token="not secret!")
    with pytest.raises(BadRequest, match="(?i)https url must be provided"):
        call_bot(sandbox, "set_webhook", url="ftp://bots.example/hook")
    with pytest.raises(SandboxError, match="HTTPS URL must be provided"):
        client.set_webhook_replicas(["bots.example"])
    assert call_bot(sandbox, "get_webhook_info").url == "" and client.webhook()["replicas"] == []
