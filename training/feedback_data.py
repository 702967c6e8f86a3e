"""Training data from what people told the bot: corrections and 👍-rated captions.

Each correction is a reference caption for its photo; a caption rated 👍 (and never 👎) is one too,
with its own weight. A tenth of the corrected photos is held back, whole, for evaluation. Photos are
named by the sha256 of their bytes, the media store's name, so their features sit in a feature cache
like Flickr8k's. A photo's corrections and its 👍 captions become two training "images" sharing one
feature row, because the loss weight is per image.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from captioning.text import Vocabulary, tokenize
from store.feedback import FeedbackExample
from training.features import FeatureCache

CORRECTION_SUFFIX, UPVOTE_SUFFIX = "#correction", "#upvote"
CHUNK_ROWS = 512


@dataclass
class FeedbackData:
    train: dict[str, list[str]] = field(default_factory=dict)  # example name → reference captions
    weights: dict[str, float] = field(default_factory=dict)  # example name → loss weight
    photo_of: dict[str, str] = field(default_factory=dict)  # example name → photo name (sha256)
    heldout: dict[str, list[str]] = field(default_factory=dict)  # photo name → its corrections
    photos: dict[str, Path] = field(default_factory=dict)  # photo name → media file (train and held out)
    counts: dict[str, Any] = field(default_factory=dict)  # numbers for the report's data_counts

    def new_words(self, vocab: Vocabulary, min_count: int) -> list[str]:
        """Words of the training corrections the vocabulary lacks, seen at least `min_count` times."""
        counts = Counter(
            word
            for name, captions in self.train.items()
            if name.endswith(CORRECTION_SUFFIX)
            for caption in captions
            for word in tokenize(caption)
            if word not in vocab
        )
        return sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))


def photo_name(example: FeedbackExample) -> str:
    """The media store names a photo by its sha256; an older row without one is named by its path."""
    return example.media_sha256 or hashlib.sha256(example.media_path.encode()).hexdigest()


def heldout_photos(corrected: Iterable[str], fraction: float) -> set[str]:
    """A stable tenth (say) of the corrected photos: the same photo stays held back run after run."""
    ranked = sorted(set(corrected), key=lambda name: hashlib.sha256(f"heldout:{name}".encode()).hexdigest())
    return set(ranked[: int(len(ranked) * fraction)])


def build_feedback_data(
    examples: Sequence[FeedbackExample],
    correction_weight: float = 1.0,
    upvote_weight: float = 0.5,
    holdout_fraction: float = 0.1,
) -> FeedbackData:
    """Group feedback by photo, hold back a fraction of the corrected photos, weight the rest."""
    data = FeedbackData()
    corrections: dict[str, list[str]] = {}
    upvoted: dict[str, list[str]] = {}
    missing: set[str] = set()
    for example in examples:
        name = photo_name(example)
        path = Path(example.media_path)
        if not path.is_file():  # deleted by hand, or /forget ran since the query
            missing.add(name)
            continue
        if not tokenize(example.text):
            continue
        data.photos[name] = path
        (corrections if example.source == "correction" else upvoted).setdefault(name, []).append(example.text)
    heldout = heldout_photos(corrections, holdout_fraction)
    for name in sorted(corrections):
        if name in heldout:
            data.heldout[name] = corrections[name]
        else:
            data.train[name + CORRECTION_SUFFIX] = corrections[name]
            data.weights[name + CORRECTION_SUFFIX] = correction_weight
            data.photo_of[name + CORRECTION_SUFFIX] = name
    for name in sorted(upvoted):
        if name not in heldout and upvote_weight > 0:
            data.train[name + UPVOTE_SUFFIX] = upvoted[name]
            data.weights[name + UPVOTE_SUFFIX] = upvote_weight
            data.photo_of[name + UPVOTE_SUFFIX] = name
    data.counts = {
        "feedback_photos": len(data.photos),
        "corrected_photos": len(corrections),
        "corrections": sum(len(c) for c in corrections.values()),
        "upvoted_photos": len(upvoted),
        "upvoted_captions": sum(len(c) for c in upvoted.values()),
        "heldout_photos": len(heldout),
        "missing_photos": len(missing),
    }
    return data


def combined_cache(
    flickr: FeatureCache, flickr_names: Sequence[str], feedback: FeatureCache | None, photo_of: dict[str, str]
) -> FeatureCache:
    """One in-memory cache: the Flickr8k rows asked for, one row per feedback example name and one per
    feedback photo name (for evaluation), so the trainer gathers everything from one array.

    Filled in chunks, so a memory-mapped Flickr8k cache is never copied twice at once.
    """
    feedback_names = [] if feedback is None else sorted(photo_of) + sorted(feedback.names)
    sources = [(flickr, flickr.rows(list(flickr_names)))]
    if feedback is not None:
        sources.append((feedback, feedback.rows([photo_of.get(name, name) for name in feedback_names])))
    grid = np.empty((sum(len(rows) for _, rows in sources), *flickr.grid.shape[1:]), np.float16)
    offset = 0
    for cache, rows in sources:
        for start in range(0, len(rows), CHUNK_ROWS):
            chunk = rows[start : start + CHUNK_ROWS]
            grid[offset + start : offset + start + len(chunk)] = cache.grid[chunk]
        offset += len(rows)
    return FeatureCache(list(flickr_names) + feedback_names, grid)
