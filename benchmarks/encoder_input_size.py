"""Does a bundle caption val better when its encoder sees the photo larger, without retraining?

CNNs trained at one resolution often do better at a somewhat higher test resolution ("FixRes",
Touvron et al. 2019). EfficientNet-Lite is fully convolutional and the decoder's attention has no
per-cell weights, so the same ImageNet backbone built for a larger input gives a larger grid
(260 px → 9×9, 292 → 10×10, 324 → 11×11) that the unchanged decoder can attend over. For each input
size this encodes the val photos (in memory, float16 as the feature cache keeps them, so no cache
under var/features is written or read), runs beam search as the bundle ships it (its length
penalty and repeat blocking) and scores it as `captionbot evaluate` does (BLEU-1..4, CIDEr-D,
captioning/specificity.py), then times the encoder at batch 1.

Run: nice -n 10 python benchmarks/encoder_input_size.py [--model models/default] [--sizes 260,292,324,228]
Writes docs/results/input_size_<version>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
from pycocoevalcap.cider.cider import Cider

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from captioning.bundle import load_decoder, read_bundle_config  # noqa: E402
from captioning.captioner import Captioner  # noqa: E402
from captioning.encoders import SPECS, ImageEncoder, build_efficientnet_lite  # noqa: E402
from captioning.images import load_image_array  # noqa: E402
from captioning.metrics import score_captions, tokenize_captions  # noqa: E402
from captioning.specificity import caption_specificity, reference_specificity  # noqa: E402
from training.cpu import machine_facts  # noqa: E402
from training.evaluate import caption_split  # noqa: E402
from training.pipeline import flickr8k_captions  # noqa: E402

ENCODE_BATCH = 32  # as training/features.py encodes the cache
TIMED_PHOTOS = 50
BOOTSTRAP_SAMPLES = 2000


def encoder_at(name: str, input_size: int) -> ImageEncoder:
    """The bundle's EfficientNet-Lite with its ImageNet weights, built for another input size; its
    weights_id names the size, so nothing keyed by it meets the shipped size's features."""
    if not name.startswith("efficientnet_lite"):
        raise SystemExit(f"{name}: only EfficientNet-Lite is fully convolutional here")
    backbone, classifier = build_efficientnet_lite(name.removeprefix("efficientnet_"), input_size)
    return ImageEncoder(replace(SPECS[name], input_size=input_size), backbone, classifier, f"{name}@{input_size}")


def captioner_for(bundle: Path, encoder: ImageEncoder) -> Captioner:
    """The bundle's decoder over `encoder`'s grid: it has no per-cell weights, only the compiled
    searches' signatures name the cell count, so that count follows the encoder's grid."""
    config, vocab, decoder = load_decoder(bundle)
    if config.encoder_top is not None:
        raise SystemExit(f"{bundle} fine-tunes its encoder's top: not handled here")
    height, width = encoder.grid_size
    config.decoder.grid_cells = height * width  # the decoder's own config object
    return Captioner(config, vocab, decoder, encoder)


def encode_split(encoder: ImageEncoder, paths: list[Path]) -> np.ndarray:
    """(N, cells, C) float16, photos loaded on two threads while the encoder runs."""
    batches = [paths[i : i + ENCODE_BATCH] for i in range(0, len(paths), ENCODE_BATCH)]
    load = lambda batch: np.stack([load_image_array(p, encoder.input_size) for p in batch])  # noqa: E731
    with ThreadPoolExecutor(max_workers=2) as pool:
        return np.concatenate([encoder.encode(pixels)[0].astype(np.float16) for pixels in pool.map(load, batches)])


def encoder_ms_per_photo(encoders: dict[int, ImageEncoder], paths: list[Path]) -> dict[int, float]:
    """Median ms of one photo at batch 1 for each encoder, the sizes taking turns photo by photo
    (so a neighbour's load on a shared machine falls on every size alike), after a warm-up call."""
    pixels = {size: [load_image_array(p, size)[None] for p in paths] for size in encoders}
    times: dict[int, list[float]] = {size: [] for size in encoders}
    for size, encoder in encoders.items():
        encoder.encode(pixels[size][0])
    for index in range(len(paths)):
        for size, encoder in encoders.items():
            started = time.perf_counter()
            encoder.encode(pixels[size][index])
            times[size].append((time.perf_counter() - started) * 1000)
    return {size: round(statistics.median(values), 1) for size, values in times.items()}


def per_photo_cider(references: dict[str, list[str]], captions: dict[str, str]) -> np.ndarray:
    """CIDEr-D of each photo's caption, in sorted name order (their mean is the corpus CIDEr-D)."""
    keys = sorted(captions)
    refs, _ = tokenize_captions({k: references[k] for k in keys})
    hyps, _ = tokenize_captions({k: [captions[k]] for k in keys})
    return np.asarray(Cider().compute_score(refs, hyps)[1])


def paired_bootstrap(difference: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Mean of per-photo differences with a 95 % interval from resampling the photos."""
    rng = np.random.default_rng(seed)
    means = difference[rng.integers(0, len(difference), (BOOTSTRAP_SAMPLES, len(difference)))].mean(axis=1)
    return {"mean": round(float(difference.mean()), 4), "ci95": [round(float(q), 4) for q in np.percentile(means, [2.5, 97.5])],
            "share_of_resamples_above_0": round(float((means > 0).mean()), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=REPO_ROOT / "models" / "default")
    parser.add_argument("--flickr8k", type=Path, default=REPO_ROOT.parent / "shared" / "datasets" / "flickr8k")
    parser.add_argument("--sizes", type=lambda text: [int(s) for s in text.split(",")], default=[260, 292, 324, 228])
    parser.add_argument("--beam", type=int, default=3)
    parser.add_argument("--limit", type=int, help="only the first N val photos (smoke runs)")
    parser.add_argument("--output", type=Path, help="default docs/results/input_size_<version>.json")
    args = parser.parse_args()

    bundle = read_bundle_config(args.model)
    references, paths = flickr8k_captions(args.flickr8k, "val", args.limit)
    names = sorted(references)
    ordered = [paths[n] for n in names]
    results: dict = {}
    captions_at: dict[int, dict[str, str]] = {}
    encoders: dict[int, ImageEncoder] = {}
    cider_at: dict[int, np.ndarray] = {}
    load_before = os.getloadavg()[0]
    for size in args.sizes:
        started = time.time()
        encoder = encoders[size] = encoder_at(bundle.encoder, size)
        captioner = captioner_for(args.model, encoder)
        grid = encode_split(encoder, ordered)
        captions_at[size] = caption_split(captioner, grid, names, args.beam)
        scores = {**score_captions(references, captions_at[size]),
                  **caption_specificity(captions_at[size], references).to_dict()}
        base = args.sizes[0]
        cider_at[size] = per_photo_cider(references, captions_at[size])
        results[str(size)] = {
            "input_size": size, "grid": list(encoder.grid_size), **scores,
            f"captions_changed_vs_{base}": sum(captions_at[base][n] != captions_at[size][n] for n in names),
            f"CIDEr_minus_{base}_paired_bootstrap": paired_bootstrap(cider_at[size] - cider_at[base]),
            "seconds": round(time.time() - started, 1),
        }
        print(json.dumps(results[str(size)]), flush=True)
        del captioner, grid
    for size, ms in encoder_ms_per_photo(encoders, ordered[:TIMED_PHOTOS]).items():
        results[str(size)]["encoder_ms_per_photo_batch1_median"] = ms
    output = args.output or REPO_ROOT / "docs" / "results" / f"input_size_{bundle.version}.json"
    report = {
        "what": "the shipped bundle's val captions when its encoder (same ImageNet weights, fully "
                "convolutional) sees the photo at other input sizes, without retraining; the decoder "
                "attends over the larger or smaller grid unchanged",
        "command": "nice -n 10 python benchmarks/encoder_input_size.py " + " ".join(sys.argv[1:]),
        "model": bundle.version,
        "split": f"val (Flickr_8k.devImages.txt), {len(names)} photos, 5 references each",
        "search": {"beam": args.beam, "length_penalty": bundle.length_penalty, "block_repeats": bundle.block_repeats},
        "images": "captioning.images.load_image_array(path, size): squashed to size×size, bicubic; "
                  "887 of the 1,000 val photos are 224×224 files, so every size above 224 is upscaled",
        "features": "float16 in memory, as the feature cache keeps them; decoded in float32",
        "encoder_timing": f"TensorFlow, batch 1, median of {TIMED_PHOTOS} val photos per size, the sizes "
                          "taking turns photo by photo in one process, after the captioning runs",
        "bootstrap": f"per-photo CIDEr-D (pycocoevalcap) differences against {args.sizes[0]} px, "
                     f"{BOOTSTRAP_SAMPLES} resamples of the photos",
        "references": reference_specificity(references),
        "sizes": results,
        "machine": machine_facts(load_before),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
