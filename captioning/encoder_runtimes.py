"""The encoder run by ONNX Runtime (the default in caption workers) or OpenVINO instead of
TensorFlow, for serving only.

The Keras backbone (built from the same weights, captioning.encoders) is exported to ONNX with
its preprocessing inside the graph, so every runtime takes the same uint8 pixels; the file is
exported once per encoder weights and kept (captioning/encoder_files.py). Training and the
decoder stay in TensorFlow. The grid features differ from TensorFlow's by float rounding only (a
few 1e-5 on values up to 6, benchmarks/encoder_runtimes.py); beam-3 captions of 100 val photos
came out identical. A runtime that cannot be loaded leaves the encoder in TensorFlow, with a warning.
"""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

from captioning.encoder_files import cached_onnx
from captioning.encoders import ImageEncoder, build_encoder
from captioning.onnx_sessions import RUNTIME_LOADERS, EncoderRuntimeError, GridFunction

log = logging.getLogger(__name__)

ENCODER_RUNTIMES = ("tensorflow", "onnxruntime", "openvino")
# Photos per runtime call. ONNX Runtime on a CPU gains nothing from larger batches (its
# convolutions already use every core; a large batch's activations fall out of the caches): two
# photos a call was fastest here on a quiet machine and within 3 % of one on a busy one
# (benchmarks/encoder_batch_sizes.py, docs/captioning.md#encoder-runtimes). Beam search still gets
# the whole batch.
EXPORTED_ENCODER_CHUNK = 2


class ExportedEncoder(ImageEncoder):
    """An ImageEncoder whose grid comes from another runtime; the Keras backbone stays for its
    shape, its classifier and for training code that asks for it."""

    def __init__(self, encoder: ImageEncoder, grid: GridFunction, runtime: str, chunk: int = EXPORTED_ENCODER_CHUNK):
        super().__init__(encoder.spec, encoder.backbone, encoder.classifier, encoder.weights_id)
        self.runtime = runtime
        self.chunk = chunk
        self._runtime_grid = grid

    def encode(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pixels = np.ascontiguousarray(images, dtype=np.uint8)
        chunks = [self._runtime_grid(pixels[start : start + self.chunk]) for start in range(0, len(pixels), self.chunk)] or [self._runtime_grid(pixels)]
        grid = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
        n, h, w, c = grid.shape
        grid = grid.reshape(n, h * w, c)
        return grid, grid.mean(axis=1)


def build_runtime_encoder(name: str, runtime: str = "tensorflow", resnet50_weights: str | Path | None = "imagenet",
                          threads: int | None = None, top_weights: Path | None = None,
                          cache_dir: Path | None = None, weights_id: str | None = None) -> ImageEncoder:
    """The encoder `name` (with a bundle's fine-tuned top, if given), run by `runtime`;
    "tensorflow" is captioning.encoders' own. `cache_dir`: where exported files are kept
    (captioning/encoder_files.py); None exports into a temporary folder, for this load only.
    `weights_id`: as build_encoder's. A runtime that is not installed or whose file cannot be
    made falls back to TensorFlow."""
    if runtime not in ENCODER_RUNTIMES:
        raise ValueError(f"unknown encoder runtime {runtime!r}; choose one of {list(ENCODER_RUNTIMES)}")
    encoder = build_encoder(name, resnet50_weights=resnet50_weights, top_weights=top_weights, weights_id=weights_id)
    if runtime == "tensorflow":
        return encoder
    try:
        grid = _load_exported(encoder, runtime, threads, top_weights, resnet50_weights, cache_dir)
    except EncoderRuntimeError as error:
        log.warning("encoder runtime %s unavailable, running the encoder in TensorFlow: %s", runtime, error)
        return encoder
    return ExportedEncoder(encoder, grid, runtime)


def _load_exported(encoder: ImageEncoder, runtime: str, threads: int | None, top_weights: Path | None,
                   resnet50_weights: str | Path | None, cache_dir: Path | None) -> GridFunction:
    if cache_dir is not None:
        return RUNTIME_LOADERS[runtime](cached_onnx(encoder, cache_dir, top_weights, resnet50_weights), threads)
    with tempfile.TemporaryDirectory(prefix="encoder-onnx-") as folder:
        onnx_path = cached_onnx(encoder, Path(folder), top_weights, resnet50_weights)
        return RUNTIME_LOADERS[runtime](onnx_path, threads)  # both read the file whole: it can go
