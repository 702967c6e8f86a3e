"""Evaluating a bundle on a Flickr8k split: COCO-toolkit scores and how specific the captions are
(captioning/specificity.py) for greedy, beam 3 and beam 5, a gallery of sample captions and
attention maps, all written into one directory."""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from captioning.attention_map import write_attention_png
from captioning.bundle import read_bundle_config, write_bundle_config
from captioning.captioner import Captioner
from captioning.images import load_image_array
from captioning.metrics import score_captions
from captioning.specificity import caption_specificity, reference_specificity
from training.features import build_feature_cache, cache_dir_for
from training.pipeline import flickr8k_captions
from training.plots import plot_gallery

log = logging.getLogger(__name__)
SEARCHES = {"greedy": 1, "beam3": 3, "beam5": 5}


def record_metrics(bundle_dir: Path, metrics: dict) -> None:
    config = read_bundle_config(bundle_dir)
    config.metrics = {**config.metrics, **metrics}
    write_bundle_config(bundle_dir, config)


def split_features(
    captioner: Captioner, flickr8k_dir: Path, features_root: Path, split: str, limit: int | None = None
) -> tuple[dict[str, list[str]], dict[str, Path], list[str], np.ndarray]:
    """A split's references, image paths, sorted names and cached grid (encoded where the cache lacks them)."""
    references, paths = flickr8k_captions(flickr8k_dir, split, limit)
    names = sorted(references)
    cache = build_feature_cache(captioner.encoder, paths, cache_dir_for(features_root, captioner.encoder.weights_id))
    return references, paths, names, np.asarray(cache.grid[cache.rows(names)])


def caption_split(captioner: Captioner, grid: np.ndarray, names: list[str], beam: int, batch: int = 100) -> dict[str, str]:
    captions: dict[str, str] = {}
    for start in tqdm(range(0, len(names), batch), desc=f"decode beam {beam}", unit="batch", leave=False):
        results = captioner.caption_features(grid[start : start + batch].astype(np.float32), beam)
        captions.update({name: r.text for name, r in zip(names[start : start + batch], results)})
    return captions


def evaluate_bundle(
    bundle_dir: Path,
    flickr8k_dir: Path,
    features_root: Path,
    out_dir: Path,
    split: str = "val",
    limit: int | None = None,
    searches: dict[str, int] = SEARCHES,
    gallery_size: int = 9,
    attention_maps: int = 3,
    record_in_bundle: bool = False,
) -> dict:
    """Scores for each search, plus gallery.png and attention_*.png; returns (and writes) scores.json."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    captioner = Captioner.load(bundle_dir)
    references, paths, names, grid = split_features(captioner, flickr8k_dir, features_root, split, limit)
    report: dict = {
        "bundle": str(bundle_dir), "version": captioner.version, "split": split, "images": len(names),
        "length_penalty": captioner.config.length_penalty, "block_repeats": captioner.config.block_repeats, "scores": {},
        "references": reference_specificity(references),
    }
    outputs: dict[str, dict[str, str]] = {}
    for label, beam in searches.items():
        started = time.time()
        outputs[label] = caption_split(captioner, grid, names, beam)
        scores = {**score_captions(references, outputs[label]), **caption_specificity(outputs[label], references).to_dict()}
        scores["decode_seconds"] = round(time.time() - started, 1)
        report["scores"][label] = scores
        log.info("%s: BLEU-1 %.3f BLEU-4 %.3f CIDEr %.3f, %d words used", label, scores["BLEU-1"], scores["BLEU-4"], scores["CIDEr"], scores["vocabulary"])
    (out_dir / "scores.json").write_text(json.dumps(report, indent=2) + "\n")
    if record_in_bundle:  # the bundle then says how good it is, e.g. for /model and promotion checks
        record_metrics(bundle_dir, {f"{split}_{label}": scores for label, scores in report["scores"].items()})
    shown = "beam3" if "beam3" in outputs else next(iter(outputs))
    (out_dir / f"captions_{shown}.json").write_text(json.dumps(outputs[shown], indent=1) + "\n")
    picks = names[:: max(1, len(names) // gallery_size)][:gallery_size]
    samples = [
        {"image": load_image_array(paths[n], 256), "caption": outputs[shown][n], "references": references[n]} for n in picks
    ]
    plot_gallery(samples, out_dir / "gallery.png")
    for name in picks[:attention_maps]:
        result = captioner.caption([paths[name]], beam=searches.get(shown, 3))[0]
        image = load_image_array(paths[name], captioner.encoder.input_size)
        write_attention_png(image, result.words, result.attention, result.grid_size, out_dir / f"attention_{Path(name).stem}.png")
    return report
