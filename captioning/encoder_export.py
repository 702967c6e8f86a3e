"""Export one encoder to ONNX, in a process of its own (captioning/encoder_files.py starts it).

    python -m captioning.encoder_export --encoder efficientnet_lite2 --key KEY --output FILE.onnx
        [--top-weights encoder_top.weights.npz] [--resnet50-weights imagenet|FILE]

Builds the encoder as Captioner.load does, checks that its weights give KEY (so the file is
never stored under another encoder's name), writes FILE and prints one JSON line: the versions
that made it and the seconds the export took. tf2onnx's memory goes with the process.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import tensorflow as tf

from captioning.encoder_files import ONNX_OPSET, encoder_key
from captioning.encoders import ImageEncoder, build_encoder
from captioning.onnx_sessions import EncoderRuntimeError


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoder", required=True)
    parser.add_argument("--key", required=True, help="what encoder_files.encoder_key gives for these weights")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--top-weights", type=Path)
    parser.add_argument("--resnet50-weights", default="imagenet")
    args = parser.parse_args(argv)
    try:
        encoder = build_encoder(args.encoder, resnet50_weights=args.resnet50_weights, top_weights=args.top_weights)
        key = encoder_key(encoder)
        if key != args.key:
            print(f"the encoder built here has key {key}, not {args.key}: not exported", file=sys.stderr)
            return 2
        started = time.perf_counter()
        export_onnx(encoder, args.output)
    except (EncoderRuntimeError, ValueError, OSError) as error:
        print(f"{error.__class__.__name__}: {error}", file=sys.stderr)
        return 1
    import tf2onnx

    print(json.dumps({"tf2onnx": tf2onnx.__version__, "opset": ONNX_OPSET, "tensorflow": tf.__version__,
                      "export_s": round(time.perf_counter() - started, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
