"""What self-critical training (SCST) rewards: each training image's references, the weight of its
policy-gradient step, and how often it is drawn in an epoch.

Flickr8k images are rewarded by CIDEr-D against their five captions. A user's correction is a
reference of its photo; a 👍-rated caption is one too, with a smaller weight on the step; 👎-rated
captions never are. Document frequencies come from Flickr8k train plus the corrections, so a phrase
that many users taught counts as a known phrase, not as a rare word worth a windfall. Feedback
images may be drawn several times an epoch, so a few hundred corrections are not drowned by
6,000 Flickr8k photos.
"""
from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np

from captioning.metrics import CiderD
from captioning.text import tokenize
from training.feedback_data import CORRECTION_SUFFIX, FeedbackData


@dataclass
class SelfCriticalData:
    references: dict[str, list[str]]  # training image name → reference captions
    weights: dict[str, float] = field(default_factory=dict)  # image name → weight of its step (default 1)
    repeats: dict[str, int] = field(default_factory=dict)  # image name → draws per epoch (default 1)
    frequency_names: Collection[str] | None = None  # images whose references set document frequencies (None: all)
    sample: int | None = None  # draws per epoch of the images without repeats, a new random sample each epoch (None: all)

    def reward(self) -> CiderD:
        """CIDEr-D with document frequencies over `frequency_names`, references cached for every image."""
        tokens = {name: [tokenize(t) for t in captions] for name, captions in self.references.items()}
        if self.frequency_names is None:
            return CiderD(tokens)
        keep = set(self.frequency_names)
        return CiderD({n: refs for n, refs in tokens.items() if n in keep}, references={n: refs for n, refs in tokens.items() if n not in keep})

    def epoch_order(self, rng: np.random.Generator) -> list[str]:
        """Every repeated image `repeats` times and every other one once (or `sample` of them), shuffled."""
        names = [name for name in self.references for _ in range(self.repeats.get(name, 1))]
        rng.shuffle(names)
        if self.sample is not None:
            others = [name for name in names if name not in self.repeats][: self.sample]
            names = [name for name in names if name in self.repeats] + others
            rng.shuffle(names)
        return names

    def step_weights(self, names: list[str]) -> np.ndarray:
        return np.array([self.weights.get(name, 1.0) for name in names], np.float32)

    @property
    def draws_per_epoch(self) -> int:
        repeated = sum(self.repeats.values())
        others = len(self.references) - len(self.repeats)
        return repeated + (others if self.sample is None else min(self.sample, others))


def with_feedback(train: dict[str, list[str]], feedback: FeedbackData, repeats: int, sample: int | None = None) -> SelfCriticalData:
    """Flickr8k train (`sample` photos of it an epoch, or all) plus the feedback, each feedback example
    drawn `repeats` times an epoch with its weight; document frequencies over Flickr8k train and the
    corrections (not the 👍 captions: the model wrote them)."""
    corrections = [name for name in feedback.train if name.endswith(CORRECTION_SUFFIX)]
    return SelfCriticalData(
        references={**train, **feedback.train}, weights=dict(feedback.weights),
        repeats={name: repeats for name in feedback.train}, frequency_names=[*train, *corrections], sample=sample,
    )


def distinctive_rewards(cider: CiderD, photos: list[str], captions: list[list[str]], samples: int,
                        contrast: float = 0.0, others: int = 3) -> np.ndarray:
    """(photos, samples) rewards: each caption's CIDEr-D against its own photo's references, minus
    `contrast` × its mean CIDEr-D against the references of the next `others` photos of the batch.

    Plain CIDEr-D pays a stock caption ("a man and a woman are sitting on a bench") that fits many
    photos about as well as one that fits only this photo; the second term takes back what a
    caption earns on photos it does not describe (as the discriminability objectives for
    captioning do), so the specific caption wins. `captions` holds `samples` captions per photo,
    photo by photo."""
    own = np.array([cider.score(photos[i // samples], words) for i, words in enumerate(captions)])
    count = min(others, len(photos) - 1)
    if contrast and count > 0:
        elsewhere = np.array([
            np.mean([cider.score(photos[(i // samples + k) % len(photos)], words) for k in range(1, count + 1)])
            for i, words in enumerate(captions)
        ])
        own = own - contrast * elsewhere
    return own.reshape(-1, samples)
