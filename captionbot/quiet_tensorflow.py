"""TensorFlow's start-up chatter kept out of the log unless `-v`.

TF_CPP_MIN_LOG_LEVEL (set by captionbot.log_setup) silences most of TensorFlow's C++ notices, but
not those printed before its logging reads that variable ("All log messages before
absl::InitializeLog()…", "oneDNN custom operations are on…"). So the subcommands that load the
model import TensorFlow first here, with the process's stderr caught and given back without
those lines: anything else TensorFlow says while importing still shows.
"""
from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

CHATTER = (
    "All log messages before absl::InitializeLog() is called",
    "oneDNN custom operations are on",
    "cpu_feature_guard",
    "To enable the following instructions:",
    "Unable to register cuDNN factory",
    "Unable to register cuFFT factory",
    "Unable to register cuBLAS factory",
    "computation placer already registered",
    "TF-TRT Warning",
)


@contextmanager
def stderr_without(chatter: tuple[str, ...] = CHATTER) -> Iterator[None]:
    """Catch file descriptor 2 (C++ writes there, below Python); give back the lines that are not chatter."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            for line in caught.read().decode(errors="replace").splitlines(keepends=True):
                if not any(words in line for words in chatter):
                    sys.stderr.write(line)
            sys.stderr.flush()


def import_tensorflow_quietly() -> None:
    with stderr_without():
        import tensorflow  # noqa: F401


def loads_tensorflow(command: str, queues: list[str] | None, action: str | None = None) -> bool:
    """Whether this subcommand loads the model (a worker does on the captions queue, its default;
    `model activate` checks the decoder loads, `model export-encoder` builds the encoder)."""
    if command == "worker":
        return "captions" in (queues or ["captions"])
    if command == "model":
        return action in ("activate", "export-encoder")
    return command in ("caption", "train", "evaluate", "tune-length-penalty", "retrain")
