"""The shipped encoder in 8-bit integers (ONNX Runtime static quantization) against the float32
file caption workers run: ms per photo, and what it does to val captions.

The encoder is exported as workers export it (captioning/encoder_files.py, into a temporary
folder), then quantized with onnxruntime.quantization: QDQ format, weights int8 per output
channel, activations uint8 with ranges from a histogram of `--calibration-photos` train photos
(percentile calibration, 0.001-99.999 %). Each variant in `--float-convs` leaves that many of the
first convolutions (the stem and the first blocks, where the error grows fastest) in float32; 0
quantizes every convolution. Timings interleave the variants call by call (batch 1, 2 and 32, the
workers' thread count); then every val photo is encoded by each variant and captioned by the
shipped decoder (beam 3), scored against the references, and compared with float32's captions
(captions changed, grid error, a paired bootstrap of per-photo CIDEr-D).

Run: python benchmarks/encoder_int8.py [--float-convs 0,6] [--calibration-photos 100] [--limit N]
Writes benchmarks/results/encoder_int8.json.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from encoder_input_size import paired_bootstrap, per_photo_cider  # noqa: E402

from captioning.bundle import encoder_top_weights, read_bundle_config  # noqa: E402
from captioning.captioner import Captioner  # noqa: E402
from captioning.encoder_files import cached_onnx  # noqa: E402
from captioning.images import load_image_array  # noqa: E402
from captioning.metrics import score_captions  # noqa: E402
from captioning.onnx_sessions import onnxruntime_grid  # noqa: E402
from captioning.specificity import caption_specificity, reference_specificity  # noqa: E402
from training.cpu import machine_facts  # noqa: E402
from training.evaluate import caption_split  # noqa: E402
from training.pipeline import flickr8k_captions  # noqa: E402

TIMED_BATCHES = (1, 2, 32)
ENCODE_CHUNK = 2  # as ExportedEncoder feeds a runtime


def calibration_pixels(flickr8k: Path, photos: int, size: int, seed: int = 0) -> np.ndarray:
    """`photos` train photos, drawn with a fixed seed, as the encoder takes them."""
    names = (flickr8k / "splits" / "Flickr_8k.trainImages.txt").read_text().split()
    random.Random(seed).shuffle(names)
    return np.stack([load_image_array(flickr8k / "images" / name, size) for name in names[:photos]])


def quantize(float_path: Path, out_path: Path, pixels: np.ndarray, float_convs: int) -> float:
    """Static QDQ quantization of the file; the first `float_convs` convolutions stay float32.
    Returns the seconds it took (calibration included)."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = out_path.with_name(out_path.stem + "-prepared.onnx")
    quant_pre_process(str(float_path), str(prepared), skip_symbolic_shape=True)
    convolutions = [node.name for node in onnx.load(str(prepared)).graph.node if node.op_type == "Conv"]
    input_name = ort.InferenceSession(str(prepared), providers=["CPUExecutionProvider"]).get_inputs()[0].name

    class Photos(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter([{input_name: pixels[i : i + 1]} for i in range(len(pixels))])

        def get_next(self) -> dict | None:
            return next(self.feeds, None)

    started = time.perf_counter()
    quantize_static(str(prepared), str(out_path), Photos(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.Percentile, nodes_to_exclude=convolutions[:float_convs])
    return time.perf_counter() - started


def encode_all(grid_of, pixels: np.ndarray) -> np.ndarray:
    grid = np.concatenate([grid_of(pixels[i : i + ENCODE_CHUNK]) for i in range(0, len(pixels), ENCODE_CHUNK)])
    return grid.reshape(len(pixels), -1, grid.shape[-1])


def interleaved_ms(sessions: dict, pixels: np.ndarray, rounds: int) -> dict[str, dict[str, float]]:
    """Median ms per photo for each variant and batch size, the variants taking turns call by call."""
    times = {name: {batch: [] for batch in TIMED_BATCHES} for name in sessions}
    for grid_of in sessions.values():
        grid_of(pixels[:2])
    for round_ in range(rounds):
        for batch in TIMED_BATCHES:
            if batch == 32 and round_ % 3:
                continue  # a third as many calls of 32
            start = (round_ * batch) % (len(pixels) - batch)
            for name, grid_of in sessions.items():
                started = time.perf_counter()
                grid_of(pixels[start : start + batch])
                times[name][batch].append((time.perf_counter() - started) * 1000 / batch)
    return {name: {f"batch_{b}": round(statistics.median(v), 2) for b, v in by_batch.items()} for name, by_batch in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=REPO_ROOT / "models" / "default")
    parser.add_argument("--flickr8k", type=Path, default=REPO_ROOT.parent / "shared" / "datasets" / "flickr8k")
    parser.add_argument("--float-convs", type=lambda text: [int(s) for s in text.split(",")], default=[0, 6])
    parser.add_argument("--calibration-photos", type=int, default=100)
    parser.add_argument("--timing-rounds", type=int, default=30)
    parser.add_argument("--limit", type=int, help="only the first N val photos (smoke runs)")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "encoder_int8.json")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    bundle = read_bundle_config(args.model)
    captioner = Captioner.load(args.model)  # TensorFlow: the decoder, and the encoder to export
    size = captioner.encoder.input_size
    references, paths = flickr8k_captions(args.flickr8k, "val", args.limit)
    names = sorted(references)
    val_pixels = np.stack([load_image_array(paths[name], size) for name in names])
    calibration = calibration_pixels(args.flickr8k, args.calibration_photos, size)
    threads = os.cpu_count() or 1
    variants: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="encoder-int8-") as folder:
        float_path = cached_onnx(captioner.encoder, Path(folder), encoder_top_weights(args.model, bundle))
        files = {"float32": float_path}
        for count in args.float_convs:
            name = f"int8, first {count} convolutions float32" if count else "int8, every convolution"
            files[name] = Path(folder) / f"int8-float{count}.onnx"
            variants[name] = {"quantize_seconds": round(quantize(float_path, files[name], calibration, count), 1),
                              "file_bytes": files[name].stat().st_size, "float_convolutions": count}
        variants["float32"] = {"file_bytes": float_path.stat().st_size}
        sessions = {name: onnxruntime_grid(path, threads) for name, path in files.items()}
        timing = interleaved_ms(sessions, val_pixels, args.timing_rounds)
        captions: dict[str, dict[str, str]] = {}
        grids: dict[str, np.ndarray] = {}
        cider: dict[str, np.ndarray] = {}
        for name, grid_of in sessions.items():
            grids[name] = encode_all(grid_of, val_pixels)
            captions[name] = caption_split(captioner, grids[name], names, beam=3)
            cider[name] = per_photo_cider(references, captions[name])
            reference_grid = grids["float32"]
            variants[name].update({
                "ms_per_photo_median": timing[name],
                **score_captions(references, captions[name]),
                **caption_specificity(captions[name], references).to_dict(),
                "captions_changed_vs_float32": sum(captions[name][n] != captions["float32"][n] for n in names),
                "grid_mean_abs_error_relative": round(float(np.abs(grids[name] - reference_grid).mean()
                                                            / np.abs(reference_grid).mean()), 4),
                "CIDEr_minus_float32_paired_bootstrap": paired_bootstrap(cider[name] - cider["float32"]),
            })
            print(json.dumps({name: variants[name]}), flush=True)
    report = {
        "what": "the shipped encoder's ONNX file quantized to int8 (static, QDQ, per-channel weights, "
                "percentile calibration) against the float32 file workers run: speed and val captions",
        "command": "python benchmarks/encoder_int8.py " + " ".join(sys.argv[1:]),
        "model": bundle.version,
        "split": f"val (Flickr_8k.devImages.txt), {len(names)} photos, 5 references each; beam 3",
        "calibration": f"{args.calibration_photos} train photos (seeded draw), percentile 0.001-99.999 %",
        "timing": f"ONNX Runtime, {threads} threads, no spinning, arena on; variants interleaved call by "
                  f"call, {args.timing_rounds} rounds at batch 1 and 2, a third as many at 32",
        "references": reference_specificity(references),
        "variants": variants,
        "machine": machine_facts(load_before),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
