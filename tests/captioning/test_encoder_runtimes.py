"""The shipped model captions through ONNX Runtime and OpenVINO as it does through TensorFlow.

Tolerance: grid features within 1e-3 of TensorFlow's (measured: under 1e-4 on values up to 6,
float rounding of another operation order), and beam-3 captions identical word for word.
"""
import platform
from pathlib import Path

import numpy as np
import pytest

from captioning.captioner import Captioner
from captioning.encoder_runtimes import ExportedEncoder, build_runtime_encoder
from captioning.images import load_image_array
from service.settings import DEFAULT_MODEL_DIR, Settings

DATA = Path(__file__).parents[1] / "data" / "val"
PHOTOS = sorted(DATA.glob("*.jpg"))
FEATURE_TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def tensorflow_captioner() -> Captioner:
    return Captioner.load(DEFAULT_MODEL_DIR)


@pytest.fixture(scope="module", params=["onnxruntime", "openvino"])
def runtime_captioner(request) -> Captioner:
    if request.param == "openvino" and platform.machine() != "x86_64":
        # requirements/lock-test-arm64.txt leaves OpenVINO out (requirements/arm64-excludes.txt).
        pytest.importorskip("openvino")
    return Captioner.load(DEFAULT_MODEL_DIR, encoder_runtime=request.param,
                          encoder_cache_dir=Settings().resolved_encoder_cache_dir)


def test_the_runtime_encoder_is_the_one_asked_for(runtime_captioner):
    assert isinstance(runtime_captioner.encoder, ExportedEncoder)
    assert runtime_captioner.encoder.grid_size == (9, 9)


def test_runtime_features_equal_tensorflows_within_the_tolerance(tensorflow_captioner, runtime_captioner):
    size = tensorflow_captioner.encoder.input_size
    pixels = np.stack([load_image_array(photo, size) for photo in PHOTOS])
    expected, expected_pooled = tensorflow_captioner.encoder.encode(pixels)
    grid, pooled = runtime_captioner.encoder.encode(pixels)
    assert grid.shape == expected.shape == (len(PHOTOS), 81, 1280)
    assert np.abs(grid - expected).max() <= FEATURE_TOLERANCE
    assert np.abs(pooled - expected_pooled).max() <= FEATURE_TOLERANCE


def test_a_batch_fed_to_the_runtime_in_chunks_gives_the_grid_of_one_call(runtime_captioner):
    encoder = runtime_captioner.encoder
    size = encoder.input_size
    pixels = np.stack([load_image_array(photo, size) for photo in PHOTOS])
    assert encoder.chunk < len(PHOTOS)
    whole = ExportedEncoder(encoder, encoder._runtime_grid, encoder.runtime, chunk=len(PHOTOS)).encode(pixels)
    chunked = encoder.encode(pixels)
    for ours, theirs in zip(chunked, whole):
        assert ours.shape == theirs.shape
        assert np.abs(ours - theirs).max() <= 1e-5
    assert encoder.encode(pixels[:0])[0].shape == (0, 81, 1280)


def test_runtime_captions_equal_tensorflows(tensorflow_captioner, runtime_captioner):
    expected = [c.text for c in tensorflow_captioner.caption(PHOTOS, beam=3)]
    single = [runtime_captioner.caption([photo], beam=3)[0].text for photo in PHOTOS]
    batched = [c.text for c in runtime_captioner.caption(PHOTOS, beam=3)]
    assert single == batched == expected


def test_an_unknown_runtime_is_refused_by_name():
    with pytest.raises(ValueError, match="tensorrt"):
        build_runtime_encoder("efficientnet_lite2", "tensorrt")


def test_the_setting_accepts_the_runtimes_and_refuses_others(monkeypatch):
    monkeypatch.setenv("ENCODER_RUNTIME", "openvino")
    assert Settings(_env_file=None).encoder_runtime == "openvino"
    monkeypatch.setenv("ENCODER_RUNTIME", "tensorrt")
    with pytest.raises(ValueError, match="encoder_runtime"):
        Settings(_env_file=None)
