"""A caption worker started with ENCODER_RUNTIME=onnxruntime runs its encoder there, and the
captions it stores and sends are the ones TensorFlow's encoder gives (beam 3, the shipped model);
one that cannot have its ONNX file serves from TensorFlow, and both say which on /metrics."""
from __future__ import annotations

from pathlib import Path

import pytest
from metrics_samples import scrape, value
from service_stack import free_port, service_stack
from sqlalchemy import select

from captioning.captioner import Captioner
from store.models import Caption

SHIPPED_MODEL = Path(__file__).resolve().parents[2] / "models" / "default"
PHOTOS = sorted((Path(__file__).resolve().parents[1] / "data" / "val").glob("*.jpg"))
WORKER = "onnx-worker"


@pytest.fixture(scope="module")
def tensorflow_captions() -> list[str]:
    return [result.text for result in Captioner.load(SHIPPED_MODEL).caption(PHOTOS, beam=3)]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with service_stack(tmp_path_factory.mktemp("service"), SHIPPED_MODEL) as stack:
        stack.worker_port = free_port()
        stack.start_bot()
        stack.start_worker(WORKER, ENCODER_RUNTIME="onnxruntime", CAPTION_BATCH="1", METRICS_PORT=str(stack.worker_port))
        stack.wait_for_workers(WORKER)
        yield stack


def caption_photos(stack, first_user: int) -> list[str]:
    """Send every photo; the captions stored for them, after checking each reply carries its own."""
    stored = []
    for index, photo in enumerate(PHOTOS):
        user = first_user + index
        message = stack.client.send_photo(user, photo.read_bytes())
        reply = stack.reply_to(user, message["message_id"], timeout=120)
        request = stack.finished_request(user, message["message_id"], timeout=60)
        with stack.session() as session:
            caption = session.scalars(select(Caption).where(Caption.request_id == request.id)).one()
        assert caption.text in reply["text"].lower()  # the reply is the caption as a sentence
        stored.append(caption.text)
    return stored


def test_a_worker_on_onnxruntime_sends_tensorflows_captions(stack, tensorflow_captions):
    assert caption_photos(stack, first_user=7101) == tensorflow_captions
    assert "its encoder runs in onnxruntime" in stack.worker_log(WORKER)
    model = value(scrape(stack.worker_port), "captionbot_model_info", version="flickr8k-lite2-v7", canary="",
                  encoder_runtime="onnxruntime")
    assert model == 1.0


def test_a_worker_whose_onnx_file_cannot_be_made_serves_from_tensorflow_and_says_so(tmp_path, tensorflow_captions):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")  # no encoder cache can be made inside it
    with service_stack(tmp_path / "service", SHIPPED_MODEL) as stack:
        port = free_port()
        stack.start_bot()
        stack.start_worker("fallback-worker", ENCODER_RUNTIME="onnxruntime", CAPTION_BATCH="1",
                           ENCODER_CACHE_DIR=str(blocker / "encoders"), METRICS_PORT=str(port))
        stack.wait_for_workers("fallback-worker")
        assert caption_photos(stack, first_user=7151) == tensorflow_captions
        log = stack.worker_log("fallback-worker")
        assert "encoder runtime onnxruntime unavailable, running the encoder in TensorFlow" in log
        assert "its encoder runs in tensorflow" in log
        samples = scrape(port)
        assert value(samples, "captionbot_model_info", version="flickr8k-lite2-v7", canary="", encoder_runtime="tensorflow") == 1.0
