"""The self-critical reward with a contrast term: a stock caption that fits other photos of the
batch as well as its own earns less than a caption that fits only its own photo."""
import numpy as np
import pytest

from captioning.metrics import CiderD
from training.self_critical import distinctive_rewards

REFERENCES = {
    "dog": ["a man and a woman watch a black dog run in the snow", "a black dog runs through deep snow"],
    "bench": ["a man and a woman sit on a bench in a park", "two people sit on a park bench"],
    "bike": ["a man and a woman ride bikes down a street", "two cyclists ride along a city street"],
    "beach": ["a man and a woman walk on the beach", "a couple walks along the sandy beach"],
}
STOCK, SPECIFIC = "a man and a woman".split(), "a black dog runs through the snow".split()


# photos of other things, so that "a man and a woman" is not in every photo's references (its
# document frequency would make it worth nothing)
OTHERS = {f"other{i}": [f"a {thing} on a table", f"the {thing} is on the table"] for i, thing in enumerate("cup book lamp vase plate bowl".split())}


@pytest.fixture(scope="module")
def cider() -> CiderD:
    return CiderD({name: [ref.split() for ref in refs] for name, refs in {**REFERENCES, **OTHERS}.items()})


def test_without_contrast_the_reward_is_cider_d(cider):
    photos = ["dog", "bench"]
    rewards = distinctive_rewards(cider, photos, [STOCK, SPECIFIC, STOCK, SPECIFIC], samples=2)
    expected = [[cider.score("dog", STOCK), cider.score("dog", SPECIFIC)], [cider.score("bench", STOCK), cider.score("bench", SPECIFIC)]]
    np.testing.assert_allclose(rewards, expected)


def test_the_contrast_term_subtracts_the_mean_score_on_the_next_photos(cider):
    photos = list(REFERENCES)
    captions = [STOCK, SPECIFIC] * len(photos)
    rewards = distinctive_rewards(cider, photos, captions, samples=2, contrast=0.5, others=2)
    for i, photo in enumerate(photos):
        for j, words in enumerate((STOCK, SPECIFIC)):
            elsewhere = np.mean([cider.score(photos[(i + k) % len(photos)], words) for k in (1, 2)])
            assert rewards[i, j] == pytest.approx(cider.score(photo, words) - 0.5 * elsewhere)


def test_a_stock_caption_falls_further_behind_a_specific_one(cider):
    photos = list(REFERENCES)
    captions = [STOCK, SPECIFIC] + [STOCK, STOCK] * (len(photos) - 1)
    plain = distinctive_rewards(cider, photos, captions, samples=2)
    contrasted = distinctive_rewards(cider, photos, captions, samples=2, contrast=1.0, others=3)
    stock_lead = lambda rewards: rewards[0, 0] - rewards[0, 1]  # noqa: E731  (on the dog photo)
    assert plain[0, 0] > 0 and stock_lead(contrasted) < stock_lead(plain)
