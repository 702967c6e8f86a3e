"""Read PyTorch's legacy (pre-zip) `.pth` state dicts without PyTorch and without running code.

The format is five pickles in a row: magic number, protocol version, system info, the state dict
(tensors refer to storages by persistent id), and the list of storage keys; then each storage's
raw bytes, prefixed by its element count. A restricted unpickler accepts only the globals that
rebuild tensors, so a malicious file cannot execute anything.
"""
from __future__ import annotations

import collections
import io
import pickle
import struct
from pathlib import Path

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "ByteStorage": np.uint8,
    "CharStorage": np.int8,
    "BoolStorage": np.bool_,
}


class CheckpointFormatError(ValueError):
    """The file is not a legacy PyTorch state dict this reader understands."""


class _StorageType:
    def __init__(self, name: str) -> None:
        self.dtype = np.dtype(STORAGE_DTYPES[name])


class _LazyTensor:
    """A tensor whose storage bytes come after the pickle; materialised once they are read."""

    def __init__(self, storage_key: str, offset: int, size: tuple, stride: tuple) -> None:
        self.storage_key, self.offset, self.size, self.stride = storage_key, offset, size, stride


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, *extra):
    return _LazyTensor(storage, storage_offset, tuple(size), tuple(stride))


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedIOBase) -> None:
        super().__init__(file)
        self.storages: dict[str, tuple[np.dtype, int]] = {}

    def find_class(self, module: str, name: str):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise CheckpointFormatError(f"refusing to load global {module}.{name}")

    def persistent_load(self, pid):
        kind, storage_type, key, _location, numel, *_view = pid
        if kind != "storage" or not isinstance(storage_type, _StorageType):
            raise CheckpointFormatError(f"unexpected persistent id {pid!r}")
        self.storages[key] = (storage_type.dtype, int(numel))
        return key


def _safe_load(file) -> object:
    class _PlainUnpickler(pickle.Unpickler):
        def find_class(self, module, name):
            raise CheckpointFormatError(f"refusing to load global {module}.{name}")

    return _PlainUnpickler(file).load()


def load_legacy_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Return {name: array} from a legacy `.pth` state dict."""
    with open(path, "rb") as file:
        if _safe_load(file) != LEGACY_MAGIC:
            raise CheckpointFormatError(f"{path} is not a legacy PyTorch checkpoint")
        _safe_load(file)  # protocol version
        _safe_load(file)  # system info
        unpickler = _RestrictedUnpickler(file)
        state = unpickler.load()
        keys = _safe_load(file)
        arrays: dict[str, np.ndarray] = {}
        for key in keys:
            dtype, numel = unpickler.storages[key]
            (count,) = struct.unpack("<q", file.read(8))
            if count != numel:
                raise CheckpointFormatError(f"storage {key}: {count} elements, expected {numel}")
            arrays[key] = np.frombuffer(file.read(count * dtype.itemsize), dtype=dtype)
    result: dict[str, np.ndarray] = {}
    for name, tensor in state.items():
        storage = arrays[tensor.storage_key]
        itemsize = storage.dtype.itemsize
        result[name] = np.lib.stride_tricks.as_strided(
            storage[tensor.offset :],
            shape=tensor.size,
            strides=tuple(s * itemsize for s in tensor.stride),
        ).copy()
    return result
