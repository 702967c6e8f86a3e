"""A caption worker started with ENCODER_RUNTIME=onnxruntime runs its encoder there, and the
captions it stores and sends are the ones TensorFlow's encoder gives (beam 3, the shipped model)."""
from __future__ import annotations

from pathlib import Path

import pytest
from service_stack import service_stack
from sqlalchemy import select

from captioning.captioner import Captioner
from store.models import Caption

SHIPPED_MODEL = Path(__file__).resolve().parents[2] / "models" / "default"
PHOTOS = sorted((Path(__file__).resolve().parents[1] / "data" / "val").glob("*.jpg"))
WORKER = "onnx-worker"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with service_stack(tmp_path_factory.mktemp("service"), SHIPPED_MODEL) as stack:
        stack.start_bot()
        stack.start_worker(WORKER, ENCODER_RUNTIME="onnxruntime", CAPTION_BATCH="1")
        stack.wait_for_workers(WORKER)
        yield stack


def test_a_worker_on_onnxruntime_sends_tensorflows_captions(stack):
    expected = [result.text for result in Captioner.load(SHIPPED_MODEL).caption(PHOTOS, beam=3)]
    stored = []
    for index, photo in enumerate(PHOTOS):
        user = 7101 + index
        message = stack.client.send_photo(user, photo.read_bytes())
        reply = stack.reply_to(user, message["message_id"], timeout=120)
        request = stack.finished_request(user, message["message_id"], timeout=60)
        with stack.session() as session:
            caption = session.scalars(select(Caption).where(Caption.request_id == request.id)).one()
        assert caption.text in reply["text"].lower()  # the reply is the caption as a sentence
        stored.append(caption.text)
    assert "encoder runtime: onnxruntime" in stack.worker_log(WORKER)
    assert stored == expected
