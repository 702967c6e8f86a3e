"""A bundle is replaced whole: a write that fails or stops midway leaves the previous bundle
loadable and unchanged, and what such a stop leaves behind is read around and then cleaned up."""
from pathlib import Path

import numpy as np
import pytest

from captioning.bundle import load_decoder, save_bundle
from captioning.directory_swap import previous_path, temporary_path
from captioning.testing import write_random_bundle


def files_of(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def test_a_bundle_whose_write_fails_midway_leaves_the_previous_one_loadable_and_identical(tmp_path):
    bundle = write_random_bundle(tmp_path / "bundle", seed=0)
    before = files_of(bundle)
    config, vocab, _ = load_decoder(bundle)
    _, _, other_decoder = load_decoder(write_random_bundle(tmp_path / "other", seed=1))
    config.metrics = {"val_greedy": {"CIDEr": np.float32(0.5)}}  # JSON cannot write a NumPy float: config.json fails
    with pytest.raises(TypeError, match="float32"):
        save_bundle(bundle, config, vocab, other_decoder)  # its weights and vocabulary were written by then
    assert files_of(bundle) == before
    assert not temporary_path(bundle).exists() and not previous_path(bundle).exists()
    reloaded, _, decoder = load_decoder(bundle)
    assert reloaded.version == config.version
    _, _, original = load_decoder(tmp_path / "bundle")
    for got, expected in zip(decoder.get_weights(), original.get_weights()):
        np.testing.assert_array_equal(got, expected)


def test_a_stop_between_the_renames_leaves_a_loadable_bundle_that_the_next_save_puts_back(tmp_path):
    bundle = write_random_bundle(tmp_path / "bundle", seed=0)
    before = files_of(bundle)
    bundle.rename(previous_path(bundle))  # the old bundle moved aside, the new one not yet in place
    config, vocab, decoder = load_decoder(bundle)
    assert config.version == "random-test"
    config.version = "next"
    save_bundle(bundle, config, vocab, decoder)
    assert load_decoder(bundle)[0].version == "next"
    assert not previous_path(bundle).exists()
    assert set(files_of(bundle)) == set(before)


def test_a_half_written_bundle_left_by_a_killed_write_is_ignored_and_then_removed(tmp_path):
    bundle = write_random_bundle(tmp_path / "bundle", seed=0)
    half = temporary_path(bundle)
    half.mkdir()
    (half / "decoder.weights.npz").write_bytes(b"PK\x03\x04 cut short")
    config, vocab, decoder = load_decoder(bundle)
    save_bundle(bundle, config, vocab, decoder)
    assert not half.exists()
    assert load_decoder(bundle)[0].version == config.version
