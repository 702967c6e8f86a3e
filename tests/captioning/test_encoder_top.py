"""The encoder's top split off for fine-tuning, carried in a bundle and run by the serving path."""
import numpy as np
import pytest

from captioning.bundle import BundleError, load_decoder, read_bundle_config, write_bundle_config
from captioning.captioner import Captioner
from captioning.encoder_top import TOP_WEIGHTS_FILE, EncoderTopConfig, EncoderTopError, last_block, top_model
from captioning.encoders import bottom_encoder, build_encoder
from captioning.testing import write_random_bundle
from encoder_top_bundles import write_fine_tuned_bundle

ENCODER = "efficientnet_lite0"


def photos(count: int = 3) -> np.ndarray:
    """Smooth colour gradients with a random tint each: photos a convolutional net reacts to."""
    rng = np.random.default_rng(1)
    ramp = np.linspace(0, 1, 224, dtype=np.float32)
    base = np.stack([ramp[None, :].repeat(224, 0), ramp[:, None].repeat(224, 1), np.full((224, 224), 0.5)], -1)
    return np.stack([(255 * base * rng.uniform(0.3, 1.0, 3)).astype(np.uint8) for _ in range(count)])


@pytest.fixture(scope="module")
def imagenet_encoder():
    return build_encoder(ENCODER)


@pytest.fixture
def fine_tuned_bundle(tmp_path):
    """A bundle whose encoder top (last block and head) differs from ImageNet's, and the encoder it was made with."""
    return write_fine_tuned_bundle(tmp_path / "bundle", ENCODER)


@pytest.mark.parametrize("blocks_back", [0, 2])
def test_the_bottom_then_the_top_is_the_whole_encoder(imagenet_encoder, blocks_back):
    pixels = photos()
    grid, _ = imagenet_encoder.encode(pixels)
    first_block = last_block(imagenet_encoder.backbone) - blocks_back
    activations, _ = bottom_encoder(imagenet_encoder, first_block).encode(pixels)
    top = top_model(imagenet_encoder.backbone, first_block)
    rebuilt = top(activations.reshape(len(pixels), *top.input_shape[1:])).numpy().reshape(grid.shape)
    np.testing.assert_allclose(rebuilt, grid, atol=1e-4)


def test_a_fine_tuned_top_round_trips_through_a_bundle_with_identical_captions(fine_tuned_bundle, imagenet_encoder):
    bundle, encoder = fine_tuned_bundle
    config, vocab, decoder = load_decoder(bundle)
    in_memory = Captioner(config, vocab, decoder, encoder)
    loaded = Captioner.load(bundle)
    pixels = photos()
    grid = loaded.encoder.encode(pixels)[0]
    np.testing.assert_array_equal(grid, encoder.encode(pixels)[0])
    assert np.abs(grid - imagenet_encoder.encode(pixels)[0]).max() > 0.1  # the bundle's top is what runs
    expected, got = in_memory.caption_pixels(pixels), loaded.caption_pixels(pixels)
    assert [r.text for r in got] == [r.text for r in expected]
    np.testing.assert_allclose([r.log_prob for r in got], [r.log_prob for r in expected], atol=1e-6)


def test_a_fine_tuned_encoder_is_not_shared_with_a_version_that_runs_imagenets(fine_tuned_bundle, imagenet_encoder, tmp_path):
    bundle, _ = fine_tuned_bundle
    fine_tuned = Captioner.load(bundle, encoder=imagenet_encoder)
    assert fine_tuned.encoder is not imagenet_encoder
    assert fine_tuned.encoder.weights_id.startswith(f"{ENCODER}+")
    assert Captioner.load(bundle, encoder=fine_tuned.encoder).encoder is fine_tuned.encoder
    plain = Captioner.load(write_random_bundle(tmp_path / "plain", ENCODER), encoder=fine_tuned.encoder)
    assert plain.encoder is not fine_tuned.encoder and plain.encoder.weights_id == ENCODER


def test_a_bundle_that_names_a_top_without_its_weights_is_refused_as_a_bundle_error(fine_tuned_bundle):
    bundle, _ = fine_tuned_bundle
    (bundle / TOP_WEIGHTS_FILE).unlink()
    with pytest.raises(BundleError, match=f"names an encoder top from block \\d+, but {TOP_WEIGHTS_FILE} is missing") as raised:
        Captioner.load(bundle)
    assert isinstance(raised.value, EncoderTopError)


def test_a_bundle_with_a_damaged_top_is_refused_as_a_bundle_error(fine_tuned_bundle):
    bundle, _ = fine_tuned_bundle
    (bundle / TOP_WEIGHTS_FILE).write_bytes(b"PK\x03\x04 cut short by a full disk")
    with pytest.raises(BundleError, match=f"{TOP_WEIGHTS_FILE} is damaged"):
        Captioner.load(bundle)


def test_a_top_that_starts_at_another_block_than_config_json_says_is_refused(fine_tuned_bundle):
    bundle, _ = fine_tuned_bundle
    config = read_bundle_config(bundle)
    saved = config.encoder_top.first_block
    config.encoder_top = EncoderTopConfig(saved - 1)  # the file holds only the blocks from `saved` on
    write_bundle_config(bundle, config)
    with pytest.raises(EncoderTopError, match=f"holds blocks {saved}..{saved} \\(with the head\\), but config.json says the top is every block from {saved - 1} on"):
        Captioner.load(bundle)


def test_a_top_of_the_wrong_shape_is_refused_naming_the_array(fine_tuned_bundle):
    bundle, _ = fine_tuned_bundle
    with np.load(bundle / TOP_WEIGHTS_FILE, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    arrays["head_conv/kernel"] = arrays["head_conv/kernel"][..., :640]  # another encoder's head width
    np.savez_compressed(bundle / TOP_WEIGHTS_FILE, **arrays)
    with pytest.raises(BundleError, match=r"head_conv/kernel has shape \(1, 1, \d+, 640\), encoder efficientnet_lite0's is \(1, 1, \d+, 1280\)"):
        Captioner.load(bundle)


def test_a_top_from_a_block_the_encoder_does_not_have_is_refused(imagenet_encoder):
    blocks = last_block(imagenet_encoder.backbone)
    with pytest.raises(EncoderTopError, match=f"has blocks 1..{blocks}, not {blocks + 1}"):
        top_model(imagenet_encoder.backbone, blocks + 1)
