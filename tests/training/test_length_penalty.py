"""Tuning beam search's length normalisation: a larger α never picks a shorter caption, the sweep
leaves the captioner as it was, and the chosen α lands in the bundle every Captioner reads."""
import shutil

import numpy as np
import pytest
from PIL import Image
from skimage import data as samples

from service.settings import DEFAULT_MODEL_DIR
from captioning.captioner import Captioner
from captioning.images import load_image_array
from training.length_penalty import best_length_penalty, sweep_length_penalty, write_length_penalty

VAL_PHOTOS = sorted((DEFAULT_MODEL_DIR.parents[1] / "tests" / "data" / "val").glob("*.jpg"))


@pytest.fixture(scope="module")
def captioner_and_grid():
    captioner = Captioner.load(DEFAULT_MODEL_DIR)
    size = captioner.encoder.input_size
    photos = [load_image_array(path, size) for path in VAL_PHOTOS]
    photos += [load_image_array(Image.fromarray(image), size) for image in (samples.chelsea(), samples.coffee(), samples.astronaut(), samples.rocket())]
    return captioner, captioner.encoder.encode(np.stack(photos))[0]


def test_a_larger_alpha_never_picks_a_shorter_caption(captioner_and_grid):
    captioner, grid = captioner_and_grid
    lengths = {}
    for alpha in (0.0, 3.0):
        captioner.config.length_penalty = alpha
        lengths[alpha] = np.array([len(r.words) for r in captioner.caption_features(grid, beam=3)])
    captioner.config.length_penalty = 0.0
    assert (lengths[3.0] >= lengths[0.0]).all(), lengths
    assert (lengths[3.0] > lengths[0.0]).any(), lengths  # α does reach the search


def test_the_sweep_scores_each_alpha_and_restores_the_captioners_own(captioner_and_grid):
    captioner, grid = captioner_and_grid
    names = [f"photo{i}" for i in range(len(grid))]
    references = {name: ["a dog runs through the snow", "a brown dog is running on a snowy hill"] for name in names}
    captioner.config.length_penalty = 1.25
    sweep = sweep_length_penalty(captioner, grid, names, references, alphas=(0.0, 3.0))
    assert captioner.config.length_penalty == 1.25
    assert [row["length_penalty"] for row in sweep] == [0.0, 3.0]
    assert sweep[1]["mean_words"] > sweep[0]["mean_words"]
    assert {"BLEU-4", "CIDEr", "beam"} <= set(sweep[0])


def test_the_best_alpha_is_the_smallest_of_the_best_scores():
    sweep = [{"length_penalty": a, "CIDEr": c} for a, c in ((0.0, 0.50), (1.0, 0.53), (2.0, 0.53), (3.0, 0.52))]
    assert best_length_penalty(sweep) == 1.0
    assert best_length_penalty(sweep[:1]) == 0.0


def test_the_chosen_alpha_is_what_a_loaded_captioner_uses(tmp_path):
    bundle = shutil.copytree(DEFAULT_MODEL_DIR, tmp_path / "bundle")
    sweep = [{"length_penalty": 2.5, "CIDEr": 0.5}]
    write_length_penalty(bundle, 2.5, sweep)
    loaded = Captioner.load(bundle)
    assert loaded.config.length_penalty == 2.5
    assert loaded.config.training["length_penalty_sweep"] == sweep
