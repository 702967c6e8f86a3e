"""Webhook mode: two `captionbot bot --webhook` processes behind the sandbox, which delivers the
updates to them in turn as a load balancer would. Each update is handled once, by one replica;
per-user limits hold across replicas because they live in Redis; a request without Telegram's
secret token, or with a wrong one, is refused with 403 and changes nothing."""
from __future__ import annotations

import socket
import time
from collections import Counter

import httpx
import pytest
from sqlalchemy import func, select

from bot import replies
from service_stack import free_port, jpeg_bytes, service_stack, wait_until
from store.models import CaptionRequest

SECRET = "replica-secret_0123456789"
REPLICAS = ("bot-a", "bot-b")
USERS = (7101, 7102, 7103, 7104, 7105)
PHOTOS_PER_USER = 4  # 20 photos, under RATE_LIMIT_PER_MINUTE (5) for each user
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def stack(tmp_path_factory, service_model_bundle):
    """Two webhook replicas (each registers its own URL; the sandbox spreads updates over both)
    and one caption worker."""
    with service_stack(tmp_path_factory.mktemp("webhook"), service_model_bundle) as stack:
        stack.replica_urls = {}
        for name in REPLICAS:
            port = free_port()
            url = f"http://127.0.0.1:{port}/telegram"
            stack.start_process(name, ["bot", "--webhook", url], TELEGRAM_WEBHOOK_SECRET=SECRET,
                                TELEGRAM_WEBHOOK_LISTEN="127.0.0.1", TELEGRAM_WEBHOOK_PORT=str(port))
            stack.replica_urls[name] = url
        for name, url in stack.replica_urls.items():
            port = int(url.split(":")[2].split("/")[0])
            wait_until(lambda: _listening(port) or stack.workers[name].poll() is not None, timeout=60,
                       what=f"replica {name} to listen")
            assert stack.workers[name].poll() is None, stack.worker_log(name)
        wait_until(lambda: stack.client.webhook()["info"]["url"] in stack.replica_urls.values(), timeout=30,
                   what="a replica to set the webhook")
        stack.client.set_webhook_replicas(list(stack.replica_urls.values()))
        stack.start_worker("caption-worker")
        stack.wait_for_workers("caption-worker")
        from service.runtime import connect
        from service.settings import Settings

        stack.runtime = connect(Settings(_env_file=None, **{k.lower(): v for k, v in stack.env.items()
                                                             if k != "TF_CPP_MIN_LOG_LEVEL"}))
        yield stack


def _replies_to(stack, user_id: int, message_id: int) -> list[dict]:
    return [m for m in stack.client.messages(user_id)
            if (m.get("reply_to_message") or {}).get("message_id") == message_id]


def _requests_for(stack, user_id: int, message_id: int) -> int:
    with stack.session() as session:
        return session.scalar(select(func.count()).select_from(CaptionRequest).where(
            CaptionRequest.user_id == user_id, CaptionRequest.message_id == message_id))


def test_twenty_photos_over_two_replicas_are_each_recorded_and_captioned_once(stack):
    sent = [(user, stack.client.send_photo(user, jpeg_bytes(seed=user * 10 + n))["message_id"])
            for n in range(PHOTOS_PER_USER) for user in USERS]

    for user, message_id in sent:
        stack.reply_to(user, message_id, timeout=120)
    time.sleep(1.0)  # time for a duplicate, were there one, to show
    for user, message_id in sent:
        assert len(_replies_to(stack, user, message_id)) == 1, (user, message_id)
        assert _requests_for(stack, user, message_id) == 1, (user, message_id)
    delivered = [d for d in stack.client.webhook()["deliveries"] if d["status"] == 200]
    assert len({d["update_id"] for d in delivered}) == len(delivered), "an update was delivered twice"
    by_replica = Counter(d["url"] for d in delivered[-len(sent):])
    assert set(by_replica) == set(stack.replica_urls.values()) and set(by_replica.values()) == {len(sent) // 2}


def test_a_users_photo_limit_counts_photos_handled_by_either_replica(stack):
    user, limit = 7201, 5  # RATE_LIMIT_PER_MINUTE in service_env
    if time.time() % 60 > 45:  # the limit counts per calendar minute: start inside one
        time.sleep(61 - time.time() % 60)
    sent = [stack.client.send_photo(user, jpeg_bytes(seed=9000 + n))["message_id"] for n in range(limit + 1)]

    stack.bot_says(user, replies.RATE_LIMITED, timeout=60)
    wait_until(lambda: sum(_requests_for(stack, user, message_id) for message_id in sent) == limit
               and all(_replies_to(stack, user, m) for m in sent if _requests_for(stack, user, m)),
               timeout=120, what="captions for the photos within the limit")
    time.sleep(1.0)
    # Each replica saw about three of the six: only a count shared in Redis refuses one.
    assert sum(1 for m in stack.client.messages(user) if m.get("text") == replies.RATE_LIMITED) == 1
    assert sum(_requests_for(stack, user, message_id) for message_id in sent) == limit


def _starts(stack, user: int) -> int:
    return sum(1 for m in stack.client.messages(user) if m.get("text") == replies.START)


def _keys_of(stack, user: int) -> set[bytes]:
    return {key for key in stack.runtime.redis.scan_iter() if str(user).encode() in key}


def test_a_request_without_the_secret_token_or_with_a_wrong_one_is_refused_and_changes_nothing(stack):
    user = 7301
    message = stack.client.send_text(user, "/start")
    wait_until(lambda: _starts(stack, user) == 1, timeout=30, what="the delivered /start's answer")
    forged = {"update_id": 10**9, "message": message}
    keys_before = _keys_of(stack, user)

    for url in stack.replica_urls.values():
        for headers in ({}, {SECRET_HEADER: "not-the-secret"}, {SECRET_HEADER: SECRET[:-1]}):
            response = httpx.post(url, json=forged, headers=headers, timeout=10)
            assert response.status_code == 403, (url, headers, response.text)
    time.sleep(1.0)
    assert _starts(stack, user) == 1 and _keys_of(stack, user) == keys_before

    accepted = httpx.post(next(iter(stack.replica_urls.values())), json=forged,
                          headers={SECRET_HEADER: SECRET}, timeout=10)
    assert accepted.status_code == 200
    wait_until(lambda: _starts(stack, user) == 2, timeout=30, what="the same update, with the secret, answered")


def test_an_update_delivered_again_is_handled_once_whichever_replica_gets_it(stack):
    user = 7401
    message = stack.client.send_text(user, "/start")
    wait_until(lambda: _starts(stack, user) == 1, timeout=30, what="the delivered /start's answer")
    again = {"update_id": 2 * 10**9, "message": message}

    for url in [*stack.replica_urls.values(), *stack.replica_urls.values()]:  # as Telegram retries
        response = httpx.post(url, json=again, headers={SECRET_HEADER: SECRET}, timeout=10)
        assert response.status_code == 200
    wait_until(lambda: _starts(stack, user) == 2, timeout=30, what="the redelivered update's one answer")
    time.sleep(1.0)
    assert _starts(stack, user) == 2

    sent = stack.client.send_text(user, "/start")  # a new update is not mistaken for a seen one
    wait_until(lambda: _starts(stack, user) == 3, timeout=30, what=f"the answer to message {sent['message_id']}")
