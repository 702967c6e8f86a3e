"""The encoder run by ONNX Runtime or OpenVINO instead of TensorFlow, for serving only.

The Keras backbone (built from the same weights, captioning.encoders) is exported to ONNX with
its preprocessing inside the graph, so every runtime takes the same uint8 pixels. Training and
the decoder stay in TensorFlow. The grid features differ from TensorFlow's by float rounding
only (a few 1e-5 on values up to 6, benchmarks/encoder_runtimes.py); beam-3 captions of 100
val photos came out identical. Each runtime is an optional install: `pip install .[onnxruntime]`
or `.[openvino]`.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from captioning.encoders import ImageEncoder, build_encoder
from captioning.onnx_sessions import RUNTIME_LOADERS, EncoderRuntimeError, GridFunction

ENCODER_RUNTIMES = ("tensorflow", "onnxruntime", "openvino")
ONNX_OPSET = 17


def export_onnx(encoder: ImageEncoder, path: Path) -> Path:
    """The backbone with its preprocessing as an ONNX file taking uint8 pixels, any batch size."""
    try:
        import tf2onnx
    except ImportError as error:
        raise EncoderRuntimeError("exporting the encoder to ONNX needs tf2onnx: pip install tf2onnx") from error
    size = encoder.input_size
    signature = (tf.TensorSpec((None, size, size, 3), tf.uint8, name="pixels"),)
    forward = tf.function(encoder._grid)
    tf2onnx.convert.from_function(forward, input_signature=signature, opset=ONNX_OPSET, output_path=str(path))
    return path


class ExportedEncoder(ImageEncoder):
    """An ImageEncoder whose grid comes from another runtime; the Keras backbone stays for its
    shape, its classifier and for training code that asks for it."""

    def __init__(self, encoder: ImageEncoder, grid: GridFunction, runtime: str):
        super().__init__(encoder.spec, encoder.backbone, encoder.classifier, encoder.weights_id)
        self.runtime = runtime
        self._runtime_grid = grid

    def encode(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        grid = self._runtime_grid(np.ascontiguousarray(images, dtype=np.uint8))
        n, h, w, c = grid.shape
        grid = grid.reshape(n, h * w, c)
        return grid, grid.mean(axis=1)


def build_runtime_encoder(name: str, runtime: str = "tensorflow", resnet50_weights: str | Path | None = "imagenet",
                          threads: int | None = None, top_weights: Path | None = None, weights_id: str | None = None) -> ImageEncoder:
    """The encoder `name` (with a bundle's fine-tuned top, if given), run by `runtime`;
    "tensorflow" is captioning.encoders' own. `weights_id`: as build_encoder's."""
    if runtime not in ENCODER_RUNTIMES:
        raise ValueError(f"unknown encoder runtime {runtime!r}; choose one of {list(ENCODER_RUNTIMES)}")
    encoder = build_encoder(name, resnet50_weights=resnet50_weights, top_weights=top_weights, weights_id=weights_id)
    if runtime == "tensorflow":
        return encoder
    with tempfile.TemporaryDirectory(prefix="encoder-onnx-") as folder:
        onnx_path = export_onnx(encoder, Path(folder) / f"{name}.onnx")
        grid = RUNTIME_LOADERS[runtime](onnx_path, threads)  # both read the file whole: it can go
    return ExportedEncoder(encoder, grid, runtime)
