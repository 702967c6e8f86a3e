"""Encoder runtimes compared on this machine: TensorFlow (what workers run) against ONNX Runtime
(CPU execution provider) and OpenVINO (CPU), for the shipped bundle's encoder.

The encoder is exported once to ONNX as the workers do it (captioning/encoder_files.py, into a
fresh cache folder: the Keras backbone with its preprocessing, uint8 pixels in); ONNX Runtime and
OpenVINO both read that file. ONNX Runtime runs as workers run it (no spin-waiting, memory arena
on) and in two variants: with its thread pools spin-waiting (its own default) and without the
memory arena. Each runtime lives in a subprocess of its own, so its load time and resident memory are its own; timings are interleaved (A B C A B C …) because the machine is
shared with other work and a slow minute should not fall on one runtime only.

Then the shipped decoder captions 100 val photos (beam 3) from each runtime's grid features, and
the captions are compared with TensorFlow's. Last, a Captioner is loaded with each runtime in a
process of its own, as a worker loads it (TensorFlow stays for the decoder), for its load time and
resident memory: with the exported file already in the cache, and for ONNX Runtime also into an
empty cache (the export a worker's first start pays).

Run: python benchmarks/encoder_runtimes.py [--photos 100] [--batch1-runs 200] [--batch32-runs 20]
(needs `pip install openvino`, a test dependency). Writes benchmarks/results/encoder_runtimes.json.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
RUNTIMES = ("tensorflow", "onnxruntime", "onnxruntime-spinning", "onnxruntime-no-arena", "openvino")
THREADS = os.cpu_count() or 1


def load_runtime(runtime: str, encoder_name: str, onnx_path: Path):
    """A callable uint8 (N, S, S, 3) → grid (N, H, W, C) for one runtime, as the workers build it."""
    if runtime == "tensorflow":
        import tensorflow as tf

        from captioning.encoders import build_encoder

        encoder = build_encoder(encoder_name)
        return lambda pixels: encoder._forward(tf.convert_to_tensor(pixels)).numpy()
    from captioning.onnx_sessions import RUNTIME_LOADERS, onnxruntime_grid  # no TensorFlow in this process

    if runtime == "onnxruntime-spinning":
        return onnxruntime_grid(onnx_path, THREADS, spinning=True)
    if runtime == "onnxruntime-no-arena":
        return onnxruntime_grid(onnx_path, THREADS, memory_arena=False)
    return RUNTIME_LOADERS[runtime](onnx_path, THREADS)


def child(runtime: str, encoder_name: str, onnx_path: Path, size: int) -> None:
    """Load, then answer commands: 'time BATCH' → seconds of one call, 'features IN OUT' → grid saved."""
    started = time.perf_counter()
    forward = load_runtime(runtime, encoder_name, onnx_path)
    for batch in (1, 32):  # first calls compile or trace: part of getting ready, not of a call
        forward(np.zeros((batch, size, size, 3), np.uint8))
    ready_s = time.perf_counter() - started
    rng = np.random.default_rng(0)
    inputs = {batch: rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8) for batch in (1, 32)}
    print(json.dumps({"ready_s": ready_s}), flush=True)
    for line in sys.stdin:
        command, *args = line.split()
        if command == "time":
            x = inputs[int(args[0])]
            t0 = time.perf_counter()
            forward(x)
            print(json.dumps({"seconds": time.perf_counter() - t0}), flush=True)
        elif command == "features":
            pixels = np.load(args[0])
            grids = [forward(pixels[i : i + 32]) for i in range(0, len(pixels), 32)]
            np.save(args[1], np.concatenate(grids).astype(np.float32))
            print(json.dumps({"done": True}), flush=True)
        elif command == "quit":
            return


# ---- parent side ---------------------------------------------------------------------------------

class RuntimeProcess:
    def __init__(self, runtime: str, encoder_name: str, onnx_path: Path, size: int):
        import psutil

        self.runtime = runtime
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--child", runtime, "--encoder", encoder_name, "--onnx", str(onnx_path), "--size", str(size)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"},
        )
        reply = self.read()
        self.start_to_ready_s = time.perf_counter() - started  # includes importing the runtime
        self.ready_s = reply["ready_s"]  # building/reading the model and compiling it, after imports
        self.ps = psutil.Process(self.process.pid)
        self.rss_ready_mb = self.ps.memory_info().rss / 2**20

    def read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.runtime} process ended early")
        return json.loads(line)

    def ask(self, command: str) -> dict:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.read()

    def close(self) -> float:
        """Peak resident memory (MB) of the process over its life, then stop it."""
        peak = self.ps.memory_info().rss / 2**20
        try:
            with open(f"/proc/{self.process.pid}/status") as status:
                peak = next(int(l.split()[1]) / 1024 for l in status if l.startswith("VmHWM:"))
        except (OSError, StopIteration):
            pass
        self.ask_quit()
        return peak

    def ask_quit(self) -> None:
        self.process.stdin.write("quit\n")
        self.process.stdin.flush()
        self.process.wait(timeout=60)


def export_onnx(model_dir: Path, cache_dir: Path) -> dict:
    """The bundle's encoder → ONNX in `cache_dir` as the workers export it (TensorFlow in a
    subprocess, so it stays out of the parent): its path, the seconds it took and the manifest."""
    code = f"""
import json, time
from pathlib import Path
from captioning.encoder_files import bundle_onnx
t0 = time.perf_counter()
path = bundle_onnx(Path({str(model_dir)!r}), Path({str(cache_dir)!r}))
print(json.dumps({{"path": str(path), "export_s": time.perf_counter() - t0,
                  "manifest": json.loads(path.with_suffix(".json").read_text())}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT,
                         env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"})
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def captioner_process(model_dir: Path, runtime: str, photos: list[Path], cache_dir: Path) -> dict:
    """What a worker pays: Captioner.load with this encoder runtime (TensorFlow import and, for the
    others, finding or making the ONNX file in `cache_dir` included), then one batch of 16 photos;
    resident memory after each (the peak from VmHWM: getrusage's ru_maxrss survives exec, so it
    would report this benchmark's own peak)."""
    code = f"""
import json, time
from pathlib import Path
t0 = time.perf_counter()
from captioning.captioner import Captioner
captioner = Captioner.load({str(model_dir)!r}, encoder_runtime={runtime!r}, encoder_cache_dir=Path({str(cache_dir)!r}))
assert captioner.encoder.__class__.__name__ == ("ImageEncoder" if {runtime!r} == "tensorflow" else "ExportedEncoder")
load_s = time.perf_counter() - t0
status_mb = lambda field: int(next(l for l in open('/proc/self/status') if l.startswith(field)).split()[1]) / 1024
loaded = status_mb('VmRSS:')
captioner.caption({[str(p) for p in photos[:16]]!r}, beam=3)
print(json.dumps({{"load_s": round(load_s, 2), "rss_mb_loaded": round(loaded, 1),
                  "rss_mb_peak": round(status_mb('VmHWM:'), 1)}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT,
                         env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"})
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def val_photos(flickr8k: Path, count: int) -> list[Path]:
    names = (flickr8k / "splits" / "Flickr_8k.devImages.txt").read_text().split()
    return [flickr8k / "images" / name for name in names[:count]]


def summary(seconds: list[float], batch: int) -> dict:
    per_photo = sorted(s * 1000 / batch for s in seconds)
    return {
        "median_ms_per_photo": round(statistics.median(per_photo), 2),
        "p95_ms_per_photo": round(per_photo[math.ceil(0.95 * len(per_photo)) - 1], 2),  # nearest rank
        "runs": len(per_photo),
    }


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("tensorflow-cpu", "tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "openvino", "numpy"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


def cpu_description() -> dict:
    sys.path.insert(0, str(REPO_ROOT))
    from training.cpu import cpu_flags, cpu_model

    flags = cpu_flags()
    return {
        "model_name": cpu_model(),
        "cores": os.cpu_count(),
        "avx512_flags": sorted(f for f in flags if f.startswith("avx512")),
        "amx_flags": sorted(f for f in flags if f.startswith("amx")),
    }


def compare_captions(model_dir: Path, grids: dict[str, np.ndarray], names: list[str]) -> dict:
    """Beam-3 captions of the shipped decoder from each runtime's features, against TensorFlow's."""
    sys.path.insert(0, str(REPO_ROOT))
    from captioning.bundle import load_decoder
    from captioning.captioner import Captioner
    from captioning.encoders import ImageEncoder

    class NoEncoder(ImageEncoder):  # the decoder only: features come from the runtimes
        def __init__(self, name: str, grid_size: tuple[int, int], channels: int):
            from captioning.encoders import SPECS

            self.spec = SPECS[name]
            self.grid_size = grid_size

    config, vocab, decoder = load_decoder(model_dir)
    reference = grids["tensorflow"]
    side = int(round(reference.shape[1] ** 0.5))
    captioner = Captioner(config, vocab, decoder, NoEncoder(config.encoder, (side, side), reference.shape[2]))
    captions = {runtime: [r.text for r in captioner.caption_features(grid, beam=3)] for runtime, grid in grids.items()}
    report = {}
    for runtime, texts in captions.items():
        if runtime == "tensorflow":
            continue
        differences = [
            {"image": name, "tensorflow": a, runtime: b}
            for name, a, b in zip(names, captions["tensorflow"], texts) if a != b
        ]
        report[runtime] = {"identical": len(texts) - len(differences), "of": len(texts), "differences": differences}
    return report


def main() -> None:
    sys.path.insert(0, str(REPO_ROOT))
    from captioning.bundle import read_bundle_config
    from captioning.encoders import SPECS
    from captioning.images import load_image_array
    from service.settings import get_settings

    settings = get_settings()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=settings.model_dir)
    parser.add_argument("--flickr8k", type=Path, default=settings.flickr8k_dir)
    parser.add_argument("--photos", type=int, default=100)
    parser.add_argument("--batch1-runs", type=int, default=200)
    parser.add_argument("--batch32-runs", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "encoder_runtimes.json")
    args = parser.parse_args()

    encoder_name = read_bundle_config(args.model).encoder
    size = SPECS[encoder_name].input_size
    photos = val_photos(args.flickr8k, args.photos)
    workdir = Path(tempfile.mkdtemp(prefix="encoder-runtimes-"))
    export = export_onnx(args.model, workdir / "encoders")
    onnx_path = Path(export.pop("path"))
    pixels_path = workdir / "pixels.npy"
    np.save(pixels_path, np.stack([load_image_array(photo, size) for photo in photos]))

    processes = {runtime: RuntimeProcess(runtime, encoder_name, onnx_path, size) for runtime in RUNTIMES}
    timings: dict[str, dict[int, list[float]]] = {runtime: {1: [], 32: []} for runtime in RUNTIMES}
    for batch, runs in ((1, args.batch1_runs), (32, args.batch32_runs)):
        for _ in range(runs):  # A B C A B C …
            for runtime, process in processes.items():
                timings[runtime][batch].append(process.ask(f"time {batch}")["seconds"])
    grids = {}
    for runtime, process in processes.items():
        features_path = workdir / f"{runtime}.npy"
        process.ask(f"features {pixels_path} {features_path}")
        grid = np.load(features_path)
        grids[runtime] = grid.reshape(grid.shape[0], -1, grid.shape[-1])
    results = {}
    for runtime, process in processes.items():
        results[runtime] = {
            "batch1": summary(timings[runtime][1], 1),
            "batch32": summary(timings[runtime][32], 32),
            "start_to_ready_s": round(process.start_to_ready_s, 2),
            "load_and_compile_s": round(process.ready_s, 2),  # ONNX runtimes: reading the exported file
            "rss_mb_ready": round(process.rss_ready_mb, 1),
            "rss_mb_peak": round(process.close(), 1),
            "max_abs_diff_vs_tensorflow": float(np.abs(grids[runtime] - grids["tensorflow"]).max()),
            "max_abs_feature_tensorflow": float(np.abs(grids["tensorflow"]).max()),
        }
    tf_times = {batch: results["tensorflow"][f"batch{batch}"]["median_ms_per_photo"] for batch in (1, 32)}
    for runtime in RUNTIMES:
        results[runtime]["speedup_vs_tensorflow"] = {
            f"batch{batch}": round(tf_times[batch] / results[runtime][f"batch{batch}"]["median_ms_per_photo"], 2) for batch in (1, 32)
        }
    captions = compare_captions(args.model, grids, [photo.name for photo in photos])
    worker = {runtime: captioner_process(args.model, runtime, photos, workdir / "encoders") for runtime in ("tensorflow", "onnxruntime", "openvino")}
    worker["onnxruntime, exporting into an empty cache"] = captioner_process(args.model, "onnxruntime", photos, workdir / "empty")
    shutil.rmtree(workdir)
    report = {
        "model": read_bundle_config(args.model).version,
        "encoder": encoder_name,
        "input_size": size,
        "cpu": cpu_description(),
        "machine": f"{platform.machine()}, Python {platform.python_version()}; shared with other work while measured",
        "threads_per_runtime": THREADS,
        "versions": versions(),
        "onnx_export": {key: round(value, 2) if isinstance(value, float) else value for key, value in export.items()},
        "photos": len(photos),
        "order": "interleaved: one call of each runtime in turn, batch 1 rounds then batch 32 rounds",
        "runtimes": results,
        "beam3_captions_vs_tensorflow": captions,
        "captioner_process": worker,  # the decoder in TensorFlow beside each encoder runtime, as in a worker
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({runtime: {k: v for k, v in r.items() if k != "max_abs_feature_tensorflow"} for runtime, r in results.items()}, indent=2))
    print(json.dumps({r: {"identical": c["identical"], "of": c["of"]} for r, c in captions.items()}))
    print(json.dumps(worker))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_args = argparse.ArgumentParser()
        child_args.add_argument("--child")
        child_args.add_argument("--encoder")
        child_args.add_argument("--onnx", type=Path)
        child_args.add_argument("--size", type=int)
        parsed = child_args.parse_args()
        sys.path.insert(0, str(REPO_ROOT))
        child(parsed.child, parsed.encoder, parsed.onnx, parsed.size)
    else:
        main()
