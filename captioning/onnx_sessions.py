"""Sessions that run an exported ONNX encoder: ONNX Runtime (CPU execution provider) and OpenVINO
(CPU). No TensorFlow here, so a process that only runs the encoder (benchmarks/encoder_runtimes.py)
holds the runtime alone.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

# uint8 (N, S, S, 3) → grid (N, H, W, C), float32
GridFunction = Callable[[np.ndarray], np.ndarray]


class EncoderRuntimeError(RuntimeError):
    """A runtime that is not installed or cannot run the exported encoder."""


def onnxruntime_grid(onnx_path: Path, threads: int | None = None, spinning: bool = False, memory_arena: bool = True) -> GridFunction:
    """An ONNX Runtime session on the CPU execution provider. Its thread pools do not spin-wait
    for work unless asked (benchmarks/encoder_runtimes.py compares): on a worker's few cores,
    shared with the bot and others, spinning threads take the CPU from those that have work
    (docs/captioning.md#encoder-runtimes)."""
    try:
        import onnxruntime as ort
    except ImportError as error:
        raise EncoderRuntimeError("ENCODER_RUNTIME=onnxruntime needs onnxruntime: pip install onnxruntime") from error
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or os.cpu_count() or 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "1" if spinning else "0")
    options.enable_cpu_mem_arena = memory_arena
    try:
        session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime's own errors (a damaged file…) have no common base
        raise EncoderRuntimeError(f"ONNX Runtime cannot load {onnx_path}: {error}") from error
    input_name = session.get_inputs()[0].name
    return lambda pixels: session.run(None, {input_name: pixels})[0]


def openvino_grid(onnx_path: Path, threads: int | None = None) -> GridFunction:
    """OpenVINO on the CPU, in float32: on a CPU with AMX its default would be bfloat16, whose
    features are further from the ones the decoder was trained on."""
    try:
        import openvino as ov
    except ImportError as error:
        raise EncoderRuntimeError("ENCODER_RUNTIME=openvino needs openvino: pip install openvino") from error
    core = ov.Core()
    config = {"INFERENCE_NUM_THREADS": threads or os.cpu_count() or 1, "INFERENCE_PRECISION_HINT": "f32"}
    compiled = core.compile_model(core.read_model(str(onnx_path)), "CPU", config)
    request = compiled.create_infer_request()  # one request: an encoder is used by one thread at a time
    return lambda pixels: np.array(request.infer([pixels])[0], copy=True)


RUNTIME_LOADERS: dict[str, Callable[[Path, int | None], GridFunction]] = {
    "onnxruntime": onnxruntime_grid,
    "openvino": openvino_grid,
}
