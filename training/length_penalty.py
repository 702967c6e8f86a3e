"""Choosing beam search's length-normalisation α on val.

Beam search scores a caption by its log-probability, which favours short, generic captions; the
normalised score log p / ((5 + len) / 6) ** α (Wu et al. 2016) lets longer ones win. α changes
only which of the finished beams is picked, so it is tuned after training, on val, and stored in
the bundle's config.json, where every Captioner reads it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from captioning.bundle import read_bundle_config, write_bundle_config
from captioning.captioner import Captioner
from captioning.metrics import score_captions
from training.evaluate import caption_split, split_features

DEFAULT_ALPHAS = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0)


def sweep_length_penalty(
    captioner: Captioner,
    grid: np.ndarray,
    names: list[str],
    references: dict[str, list[str]],
    alphas: tuple[float, ...] = DEFAULT_ALPHAS,
    beam: int = 3,
) -> list[dict]:
    """Scores (and mean caption length) of beam search at each α; the captioner's own α is restored."""
    own = captioner.config.length_penalty
    results = []
    try:
        for alpha in alphas:
            captioner.config.length_penalty = alpha
            captions = caption_split(captioner, grid, names, beam)
            scores = score_captions({n: references[n] for n in names}, captions)
            mean_words = float(np.mean([len(c.split()) for c in captions.values()]))
            results.append({
                "length_penalty": alpha, "beam": beam, "block_repeats": captioner.config.block_repeats,
                "mean_words": round(mean_words, 3), **scores,
            })
    finally:
        captioner.config.length_penalty = own
    return results


def best_length_penalty(results: list[dict], select_on: str = "CIDEr") -> float:
    """The α with the best score; the smallest such α on a tie (the least change from plain beam search)."""
    best = max(r[select_on] for r in results)
    return min(r["length_penalty"] for r in results if r[select_on] == best)


def write_length_penalty(bundle_dir: Path, alpha: float, sweep: list[dict]) -> None:
    """Set the bundle's α and keep the sweep that chose it in its training record."""
    config = read_bundle_config(bundle_dir)
    config.length_penalty = alpha
    config.training["length_penalty_sweep"] = sweep
    write_bundle_config(bundle_dir, config)


def tune_on_val(
    bundle_dir: Path,
    flickr8k_dir: Path,
    features_root: Path,
    alphas: tuple[float, ...] = DEFAULT_ALPHAS,
    beam: int = 3,
    limit: int | None = None,
) -> tuple[float, list[dict]]:
    """Sweep α on the val split (never test: the choice is model selection) from cached features."""
    captioner = Captioner.load(bundle_dir)
    references, _, names, grid = split_features(captioner, flickr8k_dir, features_root, "val", limit)
    sweep = sweep_length_penalty(captioner, grid, names, references, alphas, beam)
    return best_length_penalty(sweep), sweep
