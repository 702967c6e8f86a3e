"""The top of an EfficientNet-Lite encoder, split off so it can be fine-tuned on captions.

Training caches what the frozen bottom makes of each photo (the activations entering block
`first_block`, 9×9×208 for Lite2: a sixth of the final grid's size) and trains the last blocks
and the head convolution together with the decoder. The top is the backbone's own layers called
on a new input, so its weights are the backbone's: loading a bundle's fine-tuned top into a
freshly built encoder (by variable path, e.g. "block20_expand/kernel") makes the serving path run
exactly what was trained. Batch normalisation stays in inference mode (ImageNet statistics; its
scale and shift are trained): caption batches are too small and too correlated for batch
statistics.
"""
from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from captioning.bundle_error import BundleError

TOP_WEIGHTS_FILE = "encoder_top.weights.npz"
BLOCK_LAYERS = ("expand", "expand_bn", "expand_relu", "dw", "dw_bn", "dw_relu", "project", "project_bn")
HEAD_LAYERS = ("head_conv", "head_bn", "head_relu")


class EncoderTopError(BundleError):
    """A fine-tuned top that is missing, damaged, or does not fit the encoder or the blocks named:
    a kind of BundleError, so whoever handles a bundle that does not load handles this too."""


@dataclass(frozen=True)
class EncoderTopConfig:
    first_block: int  # the first fine-tuned block; everything before it stays ImageNet's

    def to_dict(self) -> dict:
        return {"first_block": self.first_block}

    @classmethod
    def from_dict(cls, values: dict) -> "EncoderTopConfig":
        return cls(first_block=int(values["first_block"]))


def _layer_names(backbone: keras.Model) -> set[str]:
    return {layer.name for layer in backbone.layers}


def last_block(backbone: keras.Model) -> int:
    return max(int(name.split("_")[0].removeprefix("block")) for name in _layer_names(backbone) if name.startswith("block"))


def split_input(backbone: keras.Model, first_block: int):
    """The tensor entering block `first_block` (the output of the block before it)."""
    names = _layer_names(backbone)
    if not 1 <= first_block <= last_block(backbone):
        raise EncoderTopError(f"{backbone.name} has blocks 1..{last_block(backbone)}, not {first_block}")
    first_layer = f"block{first_block}_expand" if f"block{first_block}_expand" in names else f"block{first_block}_dw"
    return backbone.get_layer(first_layer).input


def bottom_model(backbone: keras.Model, first_block: int) -> keras.Model:
    """Images → the activations entering block `first_block` (what training caches)."""
    return keras.Model(backbone.input, split_input(backbone, first_block), name=f"{backbone.name}_to_block{first_block}")


def top_model(backbone: keras.Model, first_block: int) -> keras.Model:
    """Activations entering `first_block` → the grid; shares its layers (and weights) with `backbone`."""
    names = _layer_names(backbone)
    inputs = keras.Input(tuple(split_input(backbone, first_block).shape[1:]))
    x = inputs
    for index in range(first_block, last_block(backbone) + 1):
        shortcut = x
        for suffix in BLOCK_LAYERS:
            if f"block{index}_{suffix}" in names:
                x = backbone.get_layer(f"block{index}_{suffix}")(x)
        if f"block{index}_add" in names:
            x = backbone.get_layer(f"block{index}_add")([shortcut, x])
    for name in HEAD_LAYERS:
        x = backbone.get_layer(name)(x)
    return keras.Model(inputs, x, name=f"{backbone.name}_from_block{first_block}")


def top_weights(top: keras.Model) -> dict[str, np.ndarray]:
    """Every variable of the top (trained and batch-norm statistics), float32, by path."""
    return {variable.path: np.asarray(variable.numpy(), np.float32) for variable in top.weights}


def save_top_weights(top: keras.Model, path: Path) -> None:
    """float32 (not float16 as the decoder): the top is small (~1.2 M values for one Lite2 block)
    and its errors would pass through every later layer."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **top_weights(top))
    Path(path).write_bytes(buffer.getvalue())


def top_weights_digest(path: Path) -> str:
    """What tells one fine-tuned top from another: a hash of the file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def _read_archive(path: Path, arrays: bool = True) -> dict[str, np.ndarray | None]:
    """The archive's arrays by key (only its keys, mapped to None, with `arrays=False`: no decompressing)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] if arrays else None for key in archive.files}
    except FileNotFoundError as error:
        raise EncoderTopError(f"{path} is missing") from error
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise EncoderTopError(f"{path} is damaged ({type(error).__name__}: {error})") from error


def check_top_file(path: Path, config: EncoderTopConfig) -> None:
    """The top a bundle's config.json names is there, reads, and holds the head and every block from
    `config.first_block` on, none before: a top that half-loads over ImageNet's would serve an
    encoder nobody trained."""
    if not Path(path).is_file():
        raise EncoderTopError(f"{Path(path).parent}: config.json names an encoder top from block {config.first_block}, but {Path(path).name} is missing")
    keys = _read_archive(path, arrays=False).keys()
    blocks = sorted({int(key.split("_")[0].removeprefix("block")) for key in keys if key.startswith("block")})
    has_head = any(key.startswith(HEAD_LAYERS) for key in keys)
    if not blocks or blocks != list(range(config.first_block, blocks[-1] + 1)) or not has_head:
        held = f"blocks {blocks[0]}..{blocks[-1]}" if blocks else "no blocks"
        raise EncoderTopError(
            f"{path} holds {held} ({'with' if has_head else 'without'} the head), but config.json says the "
            f"top is every block from {config.first_block} on and the head"
        )


def load_top_weights(backbone: keras.Model, path: Path) -> None:
    """Assign the archive's arrays to the backbone's variables of the same path."""
    variables = {variable.path: variable for variable in backbone.weights}
    for key, value in _read_archive(path).items():
        variable = variables.get(key)
        if variable is None:
            raise EncoderTopError(f"{path}: {key} is not a variable of encoder {backbone.name}")
        if tuple(variable.shape) != tuple(value.shape):
            raise EncoderTopError(f"{path}: {key} has shape {value.shape}, encoder {backbone.name}'s is {tuple(variable.shape)}")
        variable.assign(value.astype(np.float32))
