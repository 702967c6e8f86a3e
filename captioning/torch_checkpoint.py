"""Read PyTorch's legacy (pre-zip) `.pth` state dicts without PyTorch and without running code.

The format is five pickles in a row: magic number, protocol version, system info, the state dict
(tensors refer to storages by persistent id), and the list of storage keys; then each storage's
raw bytes, prefixed by its element count. A restricted unpickler accepts only the globals that
rebuild tensors, so a malicious file cannot execute anything; and nothing the file says (element
counts, offsets, shapes, strides) is used before it is checked against the bytes present, so a
damaged or hostile file raises CheckpointError instead of reading out of bounds or allocating
more than the file holds.
"""
from __future__ import annotations

import collections
import io
import math
import pickle
import pickletools
import struct
from pathlib import Path

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
ZIP_MAGIC = b"PK\x03\x04"
MEMO_OPCODES = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
MAX_MEMO_INDEX = 2**20  # the unpickler sizes its memo to the largest index: a bomb otherwise
MAX_DIMENSION = 2**31  # one axis of an empty tensor; keeps NumPy's shape arithmetic in range
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


class CheckpointError(ValueError):
    """The file is not a legacy PyTorch state dict this reader understands, or it is damaged."""


class _StorageType:
    def __init__(self, name: str) -> None:
        self.dtype = np.dtype(STORAGE_DTYPES[name])


class _LazyTensor:
    """A tensor whose storage bytes come after the pickle; materialised once they are read."""

    def __init__(self, storage_key: str, offset: int, size: tuple[int, ...], stride: tuple[int, ...]) -> None:
        self.storage_key, self.offset, self.size, self.stride = storage_key, offset, size, stride


def _is_int(value: object) -> bool:
    return type(value) is int  # not bool, not float


def _int_tuple(value: object, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or not all(_is_int(item) for item in value):
        raise CheckpointError(f"tensor {what} is not a sequence of integers: {value!r:.80}")
    return tuple(value)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, *_rest) -> _LazyTensor:
    if not isinstance(storage, str) or not _is_int(storage_offset):
        raise CheckpointError("a tensor names no storage or has no integer offset")
    size, stride = _int_tuple(size, "shape"), _int_tuple(stride, "stride")
    if len(size) != len(stride):
        raise CheckpointError(f"tensor shape {size} and stride {stride} differ in length")
    return _LazyTensor(storage, storage_offset, size, stride)


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedIOBase, max_bytes: int) -> None:
        super().__init__(file)
        self.max_bytes = max_bytes
        self.storages: dict[str, tuple[np.dtype, int]] = {}

    def find_class(self, module: str, name: str):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise CheckpointError(f"refusing to load global {module}.{name}")

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or len(pid) < 5:
            raise CheckpointError(f"unexpected persistent id {pid!r:.80}")
        kind, storage_type, key, _location, numel, *_view = pid
        if kind != "storage" or not isinstance(storage_type, _StorageType) or not isinstance(key, str):
            raise CheckpointError(f"unexpected persistent id {pid!r:.80}")
        if not _is_int(numel) or numel < 0 or numel * storage_type.dtype.itemsize > self.max_bytes:
            raise CheckpointError(f"storage {key}: {numel!r:.40} elements cannot fit in the file")
        if self.storages.setdefault(key, (storage_type.dtype, numel)) != (storage_type.dtype, numel):
            raise CheckpointError(f"storage {key} is declared twice, differently")
        return key


def _check_opcodes(file: io.BytesIO, what: str) -> None:
    """Walk the next pickle's opcodes (pure Python, allocating nothing they claim) before the C
    unpickler runs it: every length must fit in the bytes left, memo indices stay small, and only
    protocol-2 opcodes appear, as torch.save wrote them. The stream is left where it was."""
    start = file.tell()
    try:
        for opcode, argument, _position in pickletools.genops(file):
            if opcode.proto > 2:
                raise CheckpointError(f"the {what} uses {opcode.name}, from pickle protocol {opcode.proto}")
            if opcode.name in MEMO_OPCODES and argument >= MAX_MEMO_INDEX:
                raise CheckpointError(f"the {what} asks for memo slot {argument}")
    except CheckpointError:
        raise
    except Exception as error:  # a length past the end, an unknown opcode, no STOP
        raise CheckpointError(f"the {what} is damaged ({error!s:.80})") from error
    finally:
        file.seek(start)


def _unpickle(unpickler: pickle.Unpickler, file: io.BytesIO, what: str) -> object:
    """One pickle from the stream; whatever a damaged pickle raises becomes CheckpointError."""
    _check_opcodes(file, what)
    try:
        return unpickler.load()
    except CheckpointError:
        raise
    except Exception as error:  # a damaged pickle raises almost any type (EOFError, KeyError, …)
        raise CheckpointError(f"the {what} is damaged ({type(error).__name__}: {error!s:.80})") from error


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        raise CheckpointError(f"refusing to load global {module}.{name}")


def load_legacy_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Return {name: array} from a legacy `.pth` state dict; raises CheckpointError for anything else."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise CheckpointError(f"cannot read {path}: {error}") from error
    try:
        return read_legacy_state_dict(data)
    except CheckpointError as error:
        raise CheckpointError(f"{path}: {error}") from error


def read_legacy_state_dict(data: bytes) -> dict[str, np.ndarray]:
    """`load_legacy_state_dict` on the file's bytes."""
    if data.startswith(ZIP_MAGIC):
        raise CheckpointError("a zip (PyTorch ≥ 1.6) checkpoint; only the legacy format is read")
    file = io.BytesIO(data)
    if _unpickle(_PlainUnpickler(file), file, "magic number") != LEGACY_MAGIC:
        raise CheckpointError("not a legacy PyTorch checkpoint")
    _unpickle(_PlainUnpickler(file), file, "protocol version")
    _unpickle(_PlainUnpickler(file), file, "system info")
    unpickler = _RestrictedUnpickler(file, max_bytes=len(data))
    state = _unpickle(unpickler, file, "state dict")
    keys = _unpickle(_PlainUnpickler(file), file, "storage key list")
    storages = _read_storages(file, keys, unpickler.storages)
    if not isinstance(state, dict):
        raise CheckpointError(f"the state dict is a {type(state).__name__}, not a dict")
    return {_check_name(name): _materialise(name, tensor, storages) for name, tensor in state.items()}


def _check_name(name: object) -> str:
    if not isinstance(name, str):
        raise CheckpointError(f"a state dict key is a {type(name).__name__}, not a string")
    return name


def _read_storages(file: io.BytesIO, keys: object, declared: dict[str, tuple[np.dtype, int]]) -> dict[str, np.ndarray]:
    """Each storage's bytes, after its element count, which must match the declared one."""
    if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys) or len(set(keys)) != len(keys):
        raise CheckpointError("the storage key list is not a list of distinct names")
    arrays: dict[str, np.ndarray] = {}
    for key in keys:
        if key not in declared:
            raise CheckpointError(f"storage {key} is listed but no tensor uses it")
        dtype, numel = declared[key]
        header = file.read(8)
        if len(header) != 8:
            raise CheckpointError(f"the file ends before storage {key}")
        (count,) = struct.unpack("<q", header)
        if count != numel:
            raise CheckpointError(f"storage {key}: {count} elements, expected {numel}")
        raw = file.read(count * dtype.itemsize)
        if len(raw) != count * dtype.itemsize:
            raise CheckpointError(f"storage {key}: the file ends {count * dtype.itemsize - len(raw)} bytes early")
        arrays[key] = np.frombuffer(raw, dtype=dtype)
    return arrays


def _materialise(name: str, tensor: object, storages: dict[str, np.ndarray]) -> np.ndarray:
    """A copy of the tensor's elements, once its view is known to lie inside its storage."""
    if not isinstance(tensor, _LazyTensor):
        raise CheckpointError(f"{name} is a {type(tensor).__name__}, not a tensor")
    storage = storages.get(tensor.storage_key)
    if storage is None:
        raise CheckpointError(f"{name}: its storage {tensor.storage_key} is missing")
    if tensor.offset < 0 or any(n < 0 for n in tensor.size) or any(s < 0 for s in tensor.stride):
        raise CheckpointError(f"{name}: negative offset, shape or stride ({tensor.offset}, {tensor.size}, {tensor.stride})")
    if any(n > MAX_DIMENSION for n in tensor.size) or any(s > storage.size for s in tensor.stride):
        raise CheckpointError(f"{name}: shape {tensor.size} or stride {tensor.stride} too large for its storage")
    elements = math.prod(tensor.size)
    if elements == 0:
        if tensor.offset > storage.size:
            raise CheckpointError(f"{name}: offset {tensor.offset} is past the end of its storage ({storage.size})")
        return np.zeros(tensor.size, dtype=storage.dtype)
    last = tensor.offset + sum((n - 1) * s for n, s in zip(tensor.size, tensor.stride))
    if last >= storage.size:
        raise CheckpointError(f"{name}: shape {tensor.size} stride {tensor.stride} at offset {tensor.offset} "
                              f"reaches element {last}, past the end of its storage ({storage.size})")
    if elements > storage.size:  # a saved parameter never repeats elements; this bounds the copy
        raise CheckpointError(f"{name}: {elements} elements from a storage of {storage.size}")
    itemsize = storage.dtype.itemsize
    return np.lib.stride_tricks.as_strided(
        storage[tensor.offset :], shape=tensor.size, strides=tuple(s * itemsize for s in tensor.stride)
    ).copy()
