"""Captioning photos together gives what captioning them one at a time gives: beam search keeps
each image's beams apart, so the batch a caption worker puts a photo in (worker/caption_batch.py)
never changes its caption. Shipped model, the val photos and mirrored and cropped copies of them."""
import numpy as np
import pytest
from PIL import Image, ImageOps

from captioning.captioner import Captioner
from service.settings import DEFAULT_MODEL_DIR

VAL_PHOTOS = sorted((DEFAULT_MODEL_DIR.parents[1] / "tests" / "data" / "val").glob("*.jpg"))

LOG_PROB_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def captioner():
    return Captioner.load(DEFAULT_MODEL_DIR)


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    originals = [Image.open(path).convert("RGB") for path in VAL_PHOTOS]
    mirrored = [ImageOps.mirror(image) for image in originals]
    cropped = [image.crop((0, 0, image.width * 3 // 4, image.height)) for image in originals]
    return originals + mirrored + cropped


@pytest.mark.parametrize("batch", [2, 5, 9])
def test_captions_made_in_a_batch_equal_the_captions_made_one_at_a_time(captioner, photos, batch):
    alone = [captioner.caption([photo], beam=3)[0] for photo in photos]
    together = []
    for start in range(0, len(photos), batch):
        together += captioner.caption(photos[start : start + batch], beam=3)
    assert len({result.text for result in alone}) > 3, "the photos must get different captions"
    assert [result.text for result in together] == [result.text for result in alone]
    differences = [abs(a.log_prob - b.log_prob) for a, b in zip(alone, together)]
    assert max(differences) < LOG_PROB_TOLERANCE
    for a, b in zip(alone, together):
        np.testing.assert_allclose(a.attention, b.attention, atol=1e-4)
