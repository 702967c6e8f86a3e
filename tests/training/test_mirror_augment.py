"""Mirror and crop augmentation: the mirrored encoder sees the photo flipped left to right, the
cropped one a reproducible random crop; the trainer's feature table puts each photo's k-th view
exactly k·N rows below it, and cross-entropy steps draw every view."""
import numpy as np

from captioning.encoders import build_encoder
from training.features import CroppedEncoder, FeatureCache, MirroredEncoder
from training.train import with_view_rows


def test_view_rows_follow_the_cache_order_and_fall_back_to_the_photo_itself():
    cache = FeatureCache(["a", "b", "c"], np.arange(3, dtype=np.float16).reshape(3, 1, 1))
    mirrored = FeatureCache(["c", "a"], np.array([[[30]], [[10]]], np.float16))
    crop = FeatureCache(["b"], np.array([[[200]]], np.float16))
    assert with_view_rows(cache, [mirrored])[:, 0, 0].tolist() == [0, 1, 2, 10, 1, 30]  # "b" has no mirrored view: its own features
    assert with_view_rows(cache, [mirrored, crop])[:, 0, 0].tolist() == [0, 1, 2, 10, 1, 30, 0, 200, 2]


class PixelEncoder:
    """Returns the pixels it is given as its grid: shows what a wrapping encoder passes on."""

    name, weights_id, input_size, grid_size, spec = "pixels", "pixels", 64, (8, 8), None

    def encode(self, images):
        return images.astype(np.float32), images.mean(axis=(1, 2))


def test_the_cropped_encoder_sees_a_reproducible_crop_of_each_photo_scaled_to_the_input():
    rng = np.random.default_rng(0)
    cropped = CroppedEncoder(PixelEncoder(), view=1)
    assert cropped.name == "pixels-crop1" and cropped.input_size == 80  # loaded larger than the input
    photos = np.zeros((3, 80, 80, 3), np.uint8)
    photos[:, :, 40:] = 255  # left half black, right half white: a crop's share of each says where it lies
    photos[:, -1] = rng.integers(0, 256, size=(3, 80, 3))  # and a bottom row that tells the photos apart
    seen, _ = cropped.encode(photos)
    assert seen.shape == (3, 64, 64, 3)  # the inner encoder's own input size
    np.testing.assert_array_equal(seen, cropped.encode(photos)[0])  # same photo, same crop
    np.testing.assert_array_equal(seen[1], cropped.encode(photos[1:2])[0][0])  # whatever the batch
    other_view, _ = CroppedEncoder(PixelEncoder(), view=2).encode(photos)
    assert not np.array_equal(seen, other_view)
    crops = np.concatenate([CroppedEncoder(PixelEncoder(), view=v).encode(photos)[0] for v in range(1, 21)])
    bright = (crops[:, :-4] > 128).mean(axis=(1, 2, 3))
    assert (abs(bright - 0.5) > 0.05).mean() > 0.3  # crops off the centre, not the whole photo squashed
    left_dark = (crops[:, :-4, :8] < 128).mean(axis=(1, 2, 3))
    assert 0.2 < (left_dark > 0.5).mean() < 0.8  # mirrored about half of the time


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


def test_cross_entropy_examples_see_the_photo_or_any_view_alike():
    import tensorflow as tf

    from tiny_trainer import tiny_trainer
    from training.train import draw_views

    trainer = tiny_trainer(mirror=True, crops=2, scst_samples=3)
    assert (trainer.view_count, trainer.view_offset, trainer.mirror_offset) == (3, 6, 6)
    assert trainer.features.shape[0] == 4 * 6
    np.testing.assert_array_equal(trainer.features.numpy()[18:], trainer.grid_array * 3)  # the second crop view
    rows = tf.constant(np.tile(np.arange(4), 500), tf.int64)
    drawn = draw_views(rows, trainer.view_count, trainer.view_offset, trainer.view_seeds).numpy()
    assert (drawn % 6 == rows.numpy()).all()  # always a view of the example's own photo
    shares = np.bincount(drawn // 6, minlength=4) / len(drawn)
    assert np.allclose(shares, 0.25, atol=0.05)  # the photo and each view a quarter of the time
    trainer._make_optimizer(1e-3, 10)
    tokens = tf.constant([[1, 4, 5, 6, 2, 0], [1, 4, 7, 2, 0, 0], [1, 4, 5, 8, 9, 2], [1, 10, 11, 2, 0, 0]], tf.int32)
    before = [w.copy() for w in trainer.decoder.get_weights()]
    nll, _ = trainer._train_step(tf.constant([0, 1, 2, 3], tf.int64), tokens, tf.ones((4,)))
    assert np.isfinite(float(nll)) and not all(np.array_equal(a, b) for a, b in zip(before, trainer.decoder.get_weights()))
