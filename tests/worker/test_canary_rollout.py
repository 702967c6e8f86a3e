"""A canary through the real service: the sandbox Bot API, the bot, one caption worker holding two
versions (tiny untrained bundles sharing one encoder), real Redis and PostgreSQL.

Each photo is captioned by the version its request id is assigned to, and the caption says which;
ratings decide the canary both ways and the admins are told the numbers; /promote and /rollback
override it.
"""
from __future__ import annotations

import itertools

import pytest
import redis
from canary_fixtures import seed_ratings
from rq.registry import FailedJobRegistry
from service_stack import ADMIN_ID, jpeg_bytes, random_bundle, service_stack, wait_until

from service.canary import end_canary
from service.canary_stats import serves_canary
from service.feedback_buttons import parse_callback_data
from service.model_versions import activate, served_versions
from store.canaries import running_canary
from store.models import Caption, CaptionRequest, RequestStatus
from store.queries import active_model_version, add_model_version

pytestmark = pytest.mark.slow
ACTIVE, CANARY = "canary-test-a", "canary-test-b"
WORKER = "caption-worker-canary"
MIN_RATINGS = 20
_users = itertools.count(41_000)
_photos = itertools.count(9_000)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("canary")
    active, canary = random_bundle(root / "a", ACTIVE), random_bundle(root / "b", CANARY)
    with service_stack(root / "service", active) as stack:
        stack.env.update({"CANARY_MIN_RATINGS": str(MIN_RATINGS), "CANARY_ALPHA": "0.05"})
        stack.start_bot()
        stack.start_worker(WORKER)
        stack.wait_for_workers(WORKER)
        stack.redis = redis.Redis.from_url(stack.env["REDIS_URL"])
        with stack.session() as session:
            add_model_version(session, version=CANARY, encoder="efficientnet_lite0", path=str(canary))
        yield stack
        stack.redis.close()


@pytest.fixture
def fresh(stack):
    """Each test starts with ACTIVE serving every photo and no canary."""
    with stack.session() as session:
        end_canary(session)
        activate(session, ACTIVE)
    wait_until(lambda: served(stack) == ACTIVE, timeout=120, what=f"the worker to serve only {ACTIVE}", interval=0.2)
    return stack


def served(stack) -> str:
    return served_versions(stack.redis).get(WORKER, "")


def admin_says(stack, command: str) -> str:
    sent = stack.client.send_text(ADMIN_ID, command)
    return stack.client.wait_for_message(ADMIN_ID, lambda m: m["message_id"] > sent["message_id"], timeout=15)["text"]


def start_canary_and_wait(stack, percent: int) -> None:
    assert f"{CANARY} is a canary now" in admin_says(stack, f"/canary {CANARY} {percent}")
    wait_until(lambda: served(stack) == f"{ACTIVE} + canary {CANARY} {percent}%", timeout=120,
               what="the worker to load the canary", interval=0.2)


def caption_photos(stack, count: int) -> list[tuple[int, dict, Caption]]:
    """`count` new users each send a photo at once; (user, reply, stored caption) for each."""
    sent = [(user, stack.client.send_photo(user, jpeg_bytes(next(_photos)))) for user in itertools.islice(_users, count)]
    results = []
    for user, message in sent:
        reply = stack.reply_to(user, message["message_id"], timeout=60)
        caption_id = parse_callback_data(reply["reply_markup"]["inline_keyboard"][0][0]["callback_data"]).caption_id
        with stack.session() as session:
            results.append((user, reply, session.get(Caption, caption_id)))
    return results


def rate_one_photo(stack, up: dict[str, int], total: dict[str, int]) -> None:
    """A real 👍 through the sandbox, the rating after which the bot settles the canary; counted
    into `up` and `total` for the version that made the caption."""
    [(user, reply, caption)] = caption_photos(stack, 1)
    query = stack.client.press_button(user, reply["message_id"], f"r1:{caption.id}:up")
    stack.client.wait_for_callback_answer(query, timeout=15)
    up[caption.model_version] += 1
    total[caption.model_version] += 1


def shares(up: dict[str, int], total: dict[str, int]) -> list[str]:
    return [f"{version}: 👍 {up[version] / total[version]:.1%} ({up[version]} of {total[version]} ratings)" for version in up]


def admin_told(stack, contains: str) -> str:
    return stack.client.wait_for_message(ADMIN_ID, lambda m: contains in (m.get("text") or ""), timeout=30)["text"]


def test_a_worker_serves_both_versions_at_once_and_each_caption_records_the_one_assigned(fresh):
    stack = fresh
    start_canary_and_wait(stack, 50)
    captions = [caption for _, _, caption in caption_photos(stack, 24)]
    versions = {caption.request_id: caption.model_version for caption in captions}
    assert set(versions.values()) == {ACTIVE, CANARY}
    assert all((version == CANARY) == serves_canary(request_id, CANARY, 0.5) for request_id, version in versions.items())
    with stack.session() as session:
        statuses = {session.get(CaptionRequest, request_id).status for request_id in versions}
    assert statuses == {RequestStatus.done}
    assert FailedJobRegistry("captions", connection=stack.redis).count == 0
    assert "loading it while" in stack.worker_log(WORKER)


def test_seeded_ratings_end_a_worse_canary_and_the_admins_are_told_the_numbers(fresh):
    stack = fresh
    start_canary_and_wait(stack, 50)
    with stack.session() as session:
        seed_ratings(session, CANARY, up=5, down=MIN_RATINGS - 5)
        seed_ratings(session, ACTIVE, up=MIN_RATINGS - 4, down=4)
    up, total = {CANARY: 5, ACTIVE: MIN_RATINGS - 4}, {CANARY: MIN_RATINGS, ACTIVE: MIN_RATINGS}
    rate_one_photo(stack, up, total)
    text = admin_told(stack, f"Canary {CANARY} ended")
    assert f"{ACTIVE} stays the active model" in text and all(line in text for line in shares(up, total))
    assert "one-sided p = " in text and "< α = 0.05" in text
    with stack.session() as session:
        assert active_model_version(session).version == ACTIVE and running_canary(session) is None
    wait_until(lambda: served(stack) == ACTIVE, timeout=30, what="the worker to drop the canary", interval=0.2)
    assert {caption.model_version for _, _, caption in caption_photos(stack, 6)} == {ACTIVE}


def test_seeded_ratings_promote_a_better_canary_and_the_worker_swaps_to_it_at_once(fresh):
    stack = fresh
    start_canary_and_wait(stack, 50)
    with stack.session() as session:
        seed_ratings(session, CANARY, up=MIN_RATINGS - 2, down=2)
        seed_ratings(session, ACTIVE, up=8, down=MIN_RATINGS - 8)
    up, total = {CANARY: MIN_RATINGS - 2, ACTIVE: 8}, {CANARY: MIN_RATINGS, ACTIVE: MIN_RATINGS}
    rate_one_photo(stack, up, total)
    text = admin_told(stack, f"Canary {CANARY} promoted")
    assert f"(was {ACTIVE})" in text and all(line in text for line in shares(up, total)) and "≥ α = 0.05" in text
    with stack.session() as session:
        assert active_model_version(session).version == CANARY and running_canary(session) is None
    wait_until(lambda: served(stack) == CANARY, timeout=30, what="the worker to serve the promoted canary", interval=0.2)
    assert f"switched from model {ACTIVE} to its loaded canary {CANARY}" in stack.worker_log(WORKER)
    assert {caption.model_version for _, _, caption in caption_photos(stack, 6)} == {CANARY}


def test_rollback_ends_a_running_canary_and_promote_makes_it_active_now(fresh):
    stack = fresh
    assert "No canary is running" in admin_says(stack, "/canary")
    start_canary_and_wait(stack, 30)
    assert f"Canary {CANARY} on 30 % of photos beside {ACTIVE}" in admin_says(stack, "/canary")
    assert f"Canary ended: {CANARY} captions nothing now; {ACTIVE} captions every photo" in admin_says(stack, "/rollback")
    with stack.session() as session:
        assert active_model_version(session).version == ACTIVE and running_canary(session) is None
    wait_until(lambda: served(stack) == ACTIVE, timeout=30, what="the worker to drop the canary", interval=0.2)

    start_canary_and_wait(stack, 30)
    assert f"Promoted: {CANARY} is the active model now (was {ACTIVE})" in admin_says(stack, "/promote")
    assert "nothing to promote" in admin_says(stack, "/promote")
    with stack.session() as session:
        assert active_model_version(session).version == CANARY and running_canary(session) is None
    wait_until(lambda: served(stack) == CANARY, timeout=30, what="the worker to serve the promoted canary", interval=0.2)
