"""Model bundles: a directory with config.json, vocab.json and decoder.weights.npz (and
encoder_top.weights.npz when the encoder's last blocks were fine-tuned). No pickle.

config.json names the encoder, so loading a bundle builds the encoder its decoder was trained on.
Weights are a NumPy archive of float16 arrays keyed by variable path (half the size of float32,
no measurable change in captions), read with allow_pickle=False.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import keras

from captioning.bundle_error import BundleError
from captioning.decoder import AttentionDecoder, DecoderConfig
from captioning.directory_swap import readable_directory, replace_directory
from captioning.encoder_top import TOP_WEIGHTS_FILE, EncoderTopConfig, check_top_file, save_top_weights
from captioning.text import Vocabulary

CONFIG_FILE, VOCAB_FILE, WEIGHTS_FILE = "config.json", "vocab.json", "decoder.weights.npz"
FORMAT_VERSION = 1


@dataclass
class BundleConfig:
    version: str
    encoder: str
    decoder: DecoderConfig
    length_penalty: float = 0.0
    block_repeats: bool = False  # beam search blocks repeated bigrams with a content word (search.beam_search)
    training: dict = field(default_factory=dict)  # data, epochs, parent version…
    metrics: dict = field(default_factory=dict)
    encoder_top: EncoderTopConfig | None = None  # the encoder's last blocks were fine-tuned: their weights are in the bundle

    def to_dict(self) -> dict:
        top = {"encoder_top": self.encoder_top.to_dict()} if self.encoder_top else {}
        return {
            "format_version": FORMAT_VERSION,
            "version": self.version,
            "encoder": self.encoder,
            "decoder": self.decoder.to_dict(),
            "vocab_size": self.decoder.vocab_size,
            "length_penalty": self.length_penalty,
            "block_repeats": self.block_repeats,
            **top,
            "training": self.training,
            "metrics": self.metrics,
        }

    @classmethod
    def from_dict(cls, values: dict) -> "BundleConfig":
        if values.get("format_version") != FORMAT_VERSION:
            raise BundleError(f"unsupported bundle format {values.get('format_version')!r}")
        return cls(
            version=values["version"],
            encoder=values["encoder"],
            decoder=DecoderConfig.from_dict(values["decoder"]),
            length_penalty=values.get("length_penalty", 0.0),
            block_repeats=values.get("block_repeats", False),
            training=values.get("training", {}),
            metrics=values.get("metrics", {}),
            encoder_top=EncoderTopConfig.from_dict(values["encoder_top"]) if values.get("encoder_top") else None,
        )


def _variable_key(variable) -> str:
    """e.g. "lstm/kernel": layer names are fixed in the decoder, so paths are stable across instances."""
    return variable.path


def save_decoder_weights(decoder: AttentionDecoder, path: Path) -> None:
    arrays = {_variable_key(v): np.asarray(v.numpy(), np.float16) for v in decoder.weights}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    Path(path).write_bytes(buffer.getvalue())


def load_decoder_weights(decoder: AttentionDecoder, path: Path) -> None:
    """Assign every variable from the archive; a missing or mis-shaped array is an error, not a silent skip."""
    with np.load(path, allow_pickle=False) as archive:
        expected = {_variable_key(v): v for v in decoder.weights}
        if set(archive.files) != set(expected):
            raise BundleError(f"{path}: weights do not match the decoder config")
        for key, variable in expected.items():
            value = archive[key]
            if tuple(value.shape) != tuple(variable.shape):
                raise BundleError(f"{path}: {key} has shape {value.shape}, expected {tuple(variable.shape)}")
            variable.assign(value.astype(np.float32))


def save_bundle(directory: Path, config: BundleConfig, vocab: Vocabulary, decoder: AttentionDecoder,
                encoder_top: keras.Model | None = None) -> Path:
    """Replace the bundle in `directory` whole (captioning/directory_swap.py): a stop or an error
    while it is written leaves the previous bundle as it was, e.g. the best cross-entropy epoch
    that self-critical training or a resumed run starts from. `encoder_top`: the fine-tuned top of
    the encoder (config.encoder_top says where it starts)."""
    if (encoder_top is None) != (config.encoder_top is None):
        raise ValueError("a bundle's config names an encoder top exactly when its weights are saved")

    def write(folder: Path) -> None:
        save_decoder_weights(decoder, folder / WEIGHTS_FILE)
        if encoder_top is not None:
            save_top_weights(encoder_top, folder / TOP_WEIGHTS_FILE)
        vocab.save(folder / VOCAB_FILE)
        write_bundle_config(folder, config)

    return replace_directory(Path(directory), write)


def write_bundle_config(directory: Path, config: BundleConfig) -> None:
    """(Re)write config.json, whole or not at all: also how metrics and search settings chosen
    after training get in."""
    path = Path(directory) / CONFIG_FILE
    temporary = path.with_name(CONFIG_FILE + ".tmp")
    temporary.write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    temporary.replace(path)


def read_bundle_config(directory: Path) -> BundleConfig:
    path = readable_directory(directory) / CONFIG_FILE
    try:
        return BundleConfig.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"{path}: {exc}") from exc


def encoder_top_weights(directory: Path, config: BundleConfig) -> Path | None:
    """The bundle's fine-tuned encoder top, or None when it runs the encoder as ImageNet trained it;
    EncoderTopError (a BundleError) when it is missing, damaged, or holds other blocks than config.json says."""
    if config.encoder_top is None:
        return None
    path = readable_directory(directory) / TOP_WEIGHTS_FILE
    check_top_file(path, config.encoder_top)
    return path


def load_decoder(directory: Path) -> tuple[BundleConfig, Vocabulary, AttentionDecoder]:
    """Config, vocabulary and decoder with its weights; raises BundleError for anything broken."""
    directory = readable_directory(directory)
    config = read_bundle_config(directory)
    try:
        vocab = Vocabulary.load(directory / VOCAB_FILE)
        if len(vocab) != config.decoder.vocab_size:
            raise BundleError(f"vocab.json has {len(vocab)} words, config says {config.decoder.vocab_size}")
        decoder = AttentionDecoder(config.decoder)
        decoder.build_all()
        load_decoder_weights(decoder, directory / WEIGHTS_FILE)
    except BundleError:
        raise
    except Exception as exc:  # h5py and Keras raise many kinds for a damaged file
        raise BundleError(f"{directory}: {exc}") from exc
    return config, vocab, decoder
