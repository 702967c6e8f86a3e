"""Exported ONNX encoders kept in a folder, one file per set of encoder weights.

A caption worker needs the encoder as ONNX (captioning/encoder_runtimes.py); exporting it with
tf2onnx takes seconds and a memory peak of about 2 GB, so it is done once per weights and the
file is read by every later load. The file is named by a key: SHA-256 over the encoder's name,
input size, the opset and the bytes of every backbone weight, so a bundle with a fine-tuned top
gets a file of its own and two versions with the same weights share one. Beside each file a JSON
manifest records its size and SHA-256; a file that no longer matches is exported again.

The export runs in a child process (`python -m captioning.encoder_export`): tf2onnx's peak is
given back when it ends instead of staying in the long-lived worker. A file lock (fcntl) makes
workers that start together export once; files are written under a temporary name and renamed.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from captioning.bundle import encoder_top_weights, read_bundle_config
from captioning.encoders import ImageEncoder, build_encoder
from captioning.onnx_sessions import EncoderRuntimeError

log = logging.getLogger(__name__)

ONNX_OPSET = 17
EXPORT_TIMEOUT_S = 600.0
CAPTIONING_ROOT = Path(__file__).resolve().parents[1]  # what the child needs on its PYTHONPATH


def encoder_key(encoder: ImageEncoder) -> str:
    """SHA-256 over what makes the exported graph: name, input size, opset and every weight."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"encoder": encoder.name, "input_size": encoder.input_size, "opset": ONNX_OPSET}).encode())
    for variable in encoder.backbone.weights:
        value = np.ascontiguousarray(variable.numpy())
        digest.update(f"{variable.path}:{value.dtype}:{value.shape}".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _matches_manifest(onnx_path: Path, manifest_path: Path, key: str) -> bool:
    """The file is there and is the one its manifest describes; warns when it is not."""
    if not onnx_path.exists() and not manifest_path.exists():
        return False
    try:
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("key") == key and onnx_path.stat().st_size == manifest["bytes"] and file_sha256(onnx_path) == manifest["sha256"]:
            return True
    except (OSError, ValueError, KeyError, TypeError):
        pass
    log.warning("encoder file %s does not match its manifest: exporting it again", onnx_path)
    return False


def _export_in_child(name: str, key: str, output: Path, top_weights: Path | None,
                     resnet50_weights: str | Path | None, timeout_s: float) -> dict:
    """Run captioning.encoder_export; returns what it printed (versions, seconds)."""
    command = [sys.executable, "-m", "captioning.encoder_export", "--encoder", name, "--key", key, "--output", str(output)]
    if top_weights is not None:
        command += ["--top-weights", str(top_weights)]
    if resnet50_weights is not None:
        command += ["--resnet50-weights", str(resnet50_weights)]
    path = os.pathsep.join(p for p in (str(CAPTIONING_ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "2"}
    try:
        # close_fds: the child must hold none of the worker's sockets (Redis, database) open
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, env=env,
                              close_fds=True, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as error:
        raise EncoderRuntimeError(f"exporting {name} to ONNX took more than {timeout_s:.0f} s") from error
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise EncoderRuntimeError(f"exporting {name} to ONNX failed (exit {done.returncode}): {tail[0]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _lock(lock_path: Path, timeout_s: float):
    """An exclusive flock on `lock_path`, waited for at most `timeout_s` (another export)."""
    handle = open(lock_path, "a")
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            if time.monotonic() > deadline:
                handle.close()
                raise EncoderRuntimeError(f"another process held {lock_path} for more than {timeout_s:.0f} s")
            time.sleep(0.2)


def cached_onnx(encoder: ImageEncoder, cache_dir: Path, top_weights: Path | None = None,
                resnet50_weights: str | Path | None = "imagenet", timeout_s: float = EXPORT_TIMEOUT_S) -> Path:
    """The ONNX file of `encoder` in `cache_dir`, exported first if it is not there or is damaged.

    `top_weights` and `resnet50_weights` are what `encoder` was built from: the child builds the
    same encoder and refuses to write a file whose key differs. Raises EncoderRuntimeError when
    the folder cannot be written or the export fails.
    """
    key = encoder_key(encoder)
    onnx_path = cache_dir / f"{encoder.name}-{key}.onnx"
    manifest_path = onnx_path.with_suffix(".json")
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with _lock(cache_dir / f"{onnx_path.stem}.lock", timeout_s):
            if _matches_manifest(onnx_path, manifest_path, key):
                return onnx_path
            started = time.perf_counter()
            with tempfile.TemporaryDirectory(prefix=".export-", dir=cache_dir) as scratch:
                staged = Path(scratch) / onnx_path.name
                export = _export_in_child(encoder.name, key, staged, top_weights, resnet50_weights, timeout_s)
                manifest = {"key": key, "encoder": encoder.name, "input_size": encoder.input_size,
                            "bytes": staged.stat().st_size, "sha256": file_sha256(staged), **export}
                staged_manifest = staged.with_suffix(".json")
                staged_manifest.write_text(json.dumps(manifest, indent=2) + "\n")
                os.replace(staged, onnx_path)
                os.replace(staged_manifest, manifest_path)  # last: a manifest means a whole file
            log.info("exported encoder %s to %s in %.1f s", encoder.weights_id, onnx_path, time.perf_counter() - started)
            return onnx_path
    except OSError as error:
        raise EncoderRuntimeError(f"cannot keep the exported encoder in {cache_dir}: {error}") from error


def bundle_onnx(bundle_dir: Path, cache_dir: Path, resnet50_weights: str | Path = "imagenet") -> Path:
    """The ONNX file of a bundle's encoder (its fine-tuned top included), built as Captioner.load
    builds it and made if missing: what `captionbot model export-encoder` and the benchmarks ask for."""
    config = read_bundle_config(bundle_dir)
    top_weights = encoder_top_weights(bundle_dir, config)
    encoder = build_encoder(config.encoder, resnet50_weights=resnet50_weights, top_weights=top_weights)
    return cached_onnx(encoder, cache_dir, top_weights, resnet50_weights)
