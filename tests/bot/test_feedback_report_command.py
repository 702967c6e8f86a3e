"""/report and /models judge model versions by their users' feedback, through the sandbox Bot API,
the real bot and a real trainer process, on a seeded PostgreSQL store (tests/feedback_seed.py)."""
from __future__ import annotations

import json

import httpx
import pytest
from feedback_seed import seed_feedback
from rq.registry import FinishedJobRegistry, StartedJobRegistry
from service_stack import ADMIN_ID, SANDBOX_TOKEN, service_stack

from service.model_versions import ensure_active_version

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TRAINER = "trainer-report"
NOT_AN_ADMIN = 4242


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Bot and trainer only: a report needs no captioner, so the bundle is just the config.json
    that registers the active version (v2-new, one of the seeded ones)."""
    root = tmp_path_factory.mktemp("report")
    bundle = root / "bundle"
    bundle.mkdir()
    (bundle / "config.json").write_text(json.dumps({"version": "v2-new", "encoder": "efficientnet_lite2"}))
    with service_stack(root / "service", bundle) as stack:
        stack.start_bot()
        stack.start_worker(TRAINER, queues=("training",))
        stack.wait_for_workers(TRAINER)
        with stack.session() as session:
            ensure_active_version(session, bundle)  # as a caption worker does when it starts
            seed_feedback(session)
        yield stack


def download(stack, file_id: str) -> bytes:
    api = f"{stack.sandbox.url}/bot{SANDBOX_TOKEN}"
    path = httpx.post(f"{api}/getFile", json={"file_id": file_id}).json()["result"]["file_path"]
    return httpx.get(f"{stack.sandbox.url}/file/bot{SANDBOX_TOKEN}/{path}").content


def training_jobs(stack) -> set[str]:
    connection = stack.runtime.redis
    return (set(stack.runtime.training_queue.job_ids) | set(StartedJobRegistry("training", connection=connection).get_job_ids())
            | set(FinishedJobRegistry("training", connection=connection).get_job_ids()))


def test_report_sends_the_admin_a_png_chart_captioned_with_each_versions_numbers(stack):
    sent = stack.client.send_text(ADMIN_ID, "/report")
    stack.bot_says(ADMIN_ID, "feedback report", after=sent["message_id"])
    photo = stack.client.wait_for_message(ADMIN_ID, lambda m: m["message_id"] > sent["message_id"] and "photo" in m,
                                          timeout=120)

    lines = photo["caption"].splitlines()
    assert lines[1].startswith("v2-new (active): 4 served · 👍 25% [5–70%] of 4 · 25% corrected · BLEU-4 0.000")
    assert lines[2].startswith("v1-old: 10 served · 👍 80% [49–94%] of 10 · 20% corrected · BLEU-4 1.000, CIDEr-D")
    full_size = photo["photo"][-1]
    assert (full_size["width"], full_size["height"]) == (1200, 450)
    assert download(stack, full_size["file_id"]).startswith(PNG_SIGNATURE)


def test_report_is_refused_to_non_admins_and_queues_nothing(stack):
    before = training_jobs(stack)
    sent = stack.client.send_text(NOT_AN_ADMIN, "/report")
    stack.bot_says(NOT_AN_ADMIN, "only the bot's admins", after=sent["message_id"])
    assert training_jobs(stack) == before
    assert not any("photo" in m for m in stack.client.messages(NOT_AN_ADMIN))


def test_models_shows_each_versions_served_captions_share_interval_and_correction_rate(stack):
    sent = stack.client.send_text(ADMIN_ID, "/models")
    listing = stack.bot_says(ADMIN_ID, "👍 share [95%]", after=sent["message_id"])["text"]
    line = next(line for line in listing.splitlines() if line.startswith("*v2-new"))
    assert line.split()[4:8] == ["4", "25%", "[5–70%]", "25%"]
