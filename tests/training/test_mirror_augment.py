"""Mirror augmentation: the mirrored encoder sees the photo flipped left to right, and the
trainer's feature table puts each photo's mirrored view exactly N rows below it."""
import numpy as np

from captioning.encoders import build_encoder
from training.features import FeatureCache, MirroredEncoder
from training.train import with_mirrored_rows


def test_mirrored_rows_follow_the_cache_order_and_fall_back_to_the_photo_itself():
    cache = FeatureCache(["a", "b", "c"], np.arange(3, dtype=np.float16).reshape(3, 1, 1))
    mirrored = FeatureCache(["c", "a"], np.array([[[30]], [[10]]], np.float16))
    grid = with_mirrored_rows(cache, mirrored)
    assert grid[:, 0, 0].tolist() == [0, 1, 2, 10, 1, 30]  # "b" has no mirrored view: its own features


def test_the_mirrored_encoder_encodes_the_flipped_photo():
    encoder = build_encoder("efficientnet_lite0")
    image = np.zeros((1, 224, 224, 3), np.uint8)
    image[:, 40:120, 10:90] = (200, 30, 30)  # a red block on the left
    mirrored = MirroredEncoder(encoder)
    assert mirrored.name == "efficientnet_lite0-mirrored" and mirrored.grid_size == encoder.grid_size
    grid, _ = mirrored.encode(image)
    np.testing.assert_allclose(grid, encoder.encode(image[:, :, ::-1].copy())[0], atol=1e-5)
    assert not np.allclose(grid, encoder.encode(image)[0], atol=1e-3)


def test_self_critical_samples_see_the_photo_or_its_mirror_image_alike():
    from tiny_trainer import tiny_trainer

    rng = np.random.default_rng(0)
    names = [f"img{i}" for i in range(6)]
    for plain in (tiny_trainer(scst_samples=3), tiny_trainer(scst_samples=3, mirror=True)):  # --scst-mirror not given
        assert plain.self_critical_rows(names, rng).tolist() == np.repeat(np.arange(6), 3).tolist()

    mirrored = tiny_trainer(scst_samples=3, mirror=True, scst_mirror=True)
    views = np.stack([mirrored.self_critical_rows(names, rng).reshape(6, 3) for _ in range(50)])  # (draws, image, sample)
    assert (views == views[..., :1]).all()  # an image's samples share one view
    assert set(np.unique(views % 6)) == set(range(6)) and set(np.unique(views // 6)) == {0, 1}
    assert 0.35 < (views >= 6).mean() < 0.65  # about half of the images mirrored
