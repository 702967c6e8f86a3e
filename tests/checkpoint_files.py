"""Small legacy PyTorch checkpoints written without PyTorch, for the reader's tests and the fuzzer.

The layout is PyTorch's own (protocol 2 pickles, then the storages); the two torch globals are
pickled by reference to stand-ins here and renamed in the bytes, which protocol 2 writes as text.
"""
from __future__ import annotations

import collections
import io
import pickle
import struct
from dataclasses import dataclass

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
PROTOCOL = 2


class FloatStorage:
    """Stand-in for torch.FloatStorage, renamed in the pickle bytes."""


def _rebuild_tensor_v2(*args):
    """Stand-in for torch._utils._rebuild_tensor_v2, renamed in the pickle bytes."""


@dataclass(frozen=True)
class _Storage:
    key: str
    numel: int


@dataclass(frozen=True)
class TensorView:
    """Where a tensor's elements lie in its storage (in elements, as PyTorch counts)."""

    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


@dataclass(frozen=True)
class _Tensor:
    storage: _Storage
    view: TensorView

    def __reduce__(self):
        view = self.view
        return _rebuild_tensor_v2, (self.storage, view.offset, view.size, view.stride, False, collections.OrderedDict())


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            return ("storage", FloatStorage, obj.key, "cpu", obj.numel)
        return None


def contiguous(shape: tuple[int, ...]) -> TensorView:
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= n
    return TensorView(0, tuple(shape), tuple(reversed(strides)))


def _state_dict_pickle(state: collections.OrderedDict) -> bytes:
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=PROTOCOL).dump(state)
    here = FloatStorage.__module__.encode()
    return (
        buffer.getvalue()
        .replace(b"c" + here + b"\n_rebuild_tensor_v2\n", b"ctorch._utils\n_rebuild_tensor_v2\n")
        .replace(b"c" + here + b"\nFloatStorage\n", b"ctorch\nFloatStorage\n")
    )


def legacy_checkpoint(arrays: dict[str, np.ndarray], views: dict[str, TensorView] | None = None) -> bytes:
    """The bytes of a `.pth` holding float32 `arrays`; `views` may set a tensor's offset, shape and
    stride by hand (the storage is always the whole array)."""
    views = views or {}
    state: collections.OrderedDict = collections.OrderedDict()
    storages = []
    for index, (name, array) in enumerate(arrays.items()):
        storage = _Storage(str(index), int(array.size))
        storages.append((storage, np.ascontiguousarray(array, dtype="<f4")))
        state[name] = _Tensor(storage, views.get(name, contiguous(array.shape)))
    out = io.BytesIO()
    pickle.dump(LEGACY_MAGIC, out, protocol=PROTOCOL)
    pickle.dump(1001, out, protocol=PROTOCOL)
    pickle.dump({"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}},
                out, protocol=PROTOCOL)
    out.write(_state_dict_pickle(state))
    pickle.dump([storage.key for storage, _ in storages], out, protocol=PROTOCOL)
    for storage, array in storages:
        out.write(struct.pack("<q", storage.numel))
        out.write(array.tobytes())
    return out.getvalue()


def small_checkpoint() -> bytes:
    """Two tensors, one of them read through a transposed view: a seed for the fuzzer."""
    weights = np.arange(12, dtype=np.float32).reshape(3, 4)
    return legacy_checkpoint(
        {"conv.weight": weights, "conv.bias": np.array([0.5, -1.0, 2.0], dtype=np.float32),
         "head.weight": weights},
        views={"head.weight": TensorView(0, (4, 3), (1, 4))},
    )
