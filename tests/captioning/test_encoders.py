"""The encoders: EfficientNet-Lite's ImageNet weights are read and laid out right (it recognises
scikit-image's sample photos), ResNet50 builds with the documented grid."""
import numpy as np
import pytest
from PIL import Image
from skimage import data

from captioning.encoders import build_encoder
from captioning.images import load_image_array

CAT_CLASSES = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967


@pytest.mark.parametrize("name, grid", [("efficientnet_lite0", (7, 7)), ("efficientnet_lite2", (9, 9))])
def test_efficientnet_lite_classifies_chelsea_as_a_cat_and_coffee_as_espresso(name, grid):
    encoder = build_encoder(name)
    images = np.stack([load_image_array(Image.fromarray(photo), encoder.input_size) for photo in (data.chelsea(), data.coffee())])
    top = encoder.classify(images).argmax(axis=1)
    assert top[0] in CAT_CLASSES
    assert top[1] == ESPRESSO
    features, pooled = encoder.encode(images)
    assert encoder.grid_size == grid
    assert features.shape == (2, grid[0] * grid[1], 1280)
    np.testing.assert_allclose(pooled, features.mean(axis=1), rtol=1e-5)


def test_resnet50_builds_without_weights_and_gives_a_7x7x2048_grid():
    encoder = build_encoder("resnet50", resnet50_weights=None)
    features, pooled = encoder.encode(np.zeros((1, 224, 224, 3), np.uint8))
    assert features.shape == (1, 49, 2048)
    assert pooled.shape == (1, 2048)


def test_unknown_encoder_name_is_refused():
    with pytest.raises(ValueError, match="unknown encoder"):
        build_encoder("vgg16")
