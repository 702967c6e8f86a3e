"""`Captioner`: a loaded bundle (encoder + decoder + vocabulary) that captions images."""
from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from captioning.bundle import BundleConfig, encoder_top_weights, load_decoder
from captioning.encoder_runtimes import build_runtime_encoder
from captioning.encoders import ImageEncoder, encoder_weights_id
from captioning.images import DEFAULT_MAX_PIXELS, load_image_array
from captioning.search import CompiledBeamSearch, CompiledDecoder, Hypothesis, forced_attention
from captioning.text import Vocabulary, tokenize

ImageInput = bytes | str | Path | Image.Image
ENCODE_BATCH = 16
# Wraps one step of captioning by name; a worker times them, everyone else passes nothing.
StageTimer = Callable[[str], AbstractContextManager[object]]


def untimed(name: str) -> AbstractContextManager[object]:
    return nullcontext()


@dataclass
class CaptionResult:
    text: str
    words: list[str]
    attention: np.ndarray  # (len(words), grid_h · grid_w)
    grid_size: tuple[int, int]
    log_prob: float


class Captioner:
    def __init__(self, config: BundleConfig, vocab: Vocabulary, decoder, encoder: ImageEncoder, max_pixels: int = DEFAULT_MAX_PIXELS):
        if encoder.name != config.encoder:
            raise ValueError(f"bundle was trained on {config.encoder} features, got encoder {encoder.name}")
        self.config = config
        self.vocab = vocab
        self.decoder = decoder
        self.encoder = encoder
        self.max_pixels = max_pixels
        self.compiled = CompiledDecoder(decoder)
        self.content_words = vocab.content_words()
        self.beam_searches: dict[int, CompiledBeamSearch] = {}

    @classmethod
    def load(cls, bundle_dir: str | Path, resnet50_weights: str | Path | None = None, max_pixels: int = DEFAULT_MAX_PIXELS,
             encoder: ImageEncoder | None = None, encoder_runtime: str = "tensorflow",
             encoder_cache_dir: Path | None = None) -> "Captioner":
        """`encoder`: one already built (another version's), shared if the bundle names the same
        one, so a worker serving two versions holds one encoder and two decoders. `encoder_runtime`:
        what runs a newly built encoder, `encoder_cache_dir` where its exported file is kept
        (captioning/encoder_runtimes.py)."""
        config, vocab, decoder = load_decoder(Path(bundle_dir))
        top_weights = encoder_top_weights(bundle_dir, config)
        weights_id = encoder_weights_id(config.encoder, top_weights)  # hashes the top's file: once
        shared = encoder is not None and encoder.weights_id == weights_id
        if not shared:
            encoder = build_runtime_encoder(config.encoder, encoder_runtime, resnet50_weights=resnet50_weights or "imagenet",
                                            top_weights=top_weights, cache_dir=encoder_cache_dir,
                                            weights_id=weights_id)
        captioner = cls(config, vocab, decoder, encoder, max_pixels)
        captioner.warm_up(decoder_only=shared)
        return captioner

    @property
    def version(self) -> str:
        return self.config.version

    def warm_up(self, decoder_only: bool = False) -> None:
        """Trace the tf.functions now, so the first user does not wait for it (a shared encoder is
        traced already)."""
        if decoder_only:
            height, width = self.encoder.grid_size
            self.caption_features(np.zeros((1, height * width, self.encoder.spec.channels), np.float32), beam=3)
            return
        size = self.encoder.input_size
        self.caption([Image.new("RGB", (size, size))], beam=3)
        # A second batch size makes the encoder's tf.function trace for any batch size (it relaxes
        # the shape on the second one it sees): a worker's first batch of several photos is not slow.
        self.encoder.encode(np.zeros((2, size, size, 3), np.uint8))

    def caption(self, images: list[ImageInput], beam: int = 3, stage: StageTimer = untimed) -> list[CaptionResult]:
        """Decode (safely), encode in batches, then search; raises captioning.images.ImageError for bad input.

        `stage(name)` wraps each step ("resize": decode and resize, "encoder", "search"), for a caller
        that times them.
        """
        results: list[CaptionResult] = []
        for start in range(0, len(images), ENCODE_BATCH):
            chunk = images[start : start + ENCODE_BATCH]
            with stage("resize"):
                pixels = np.stack([load_image_array(image, self.encoder.input_size, self.max_pixels) for image in chunk])
            with stage("encoder"):
                grid, _ = self.encoder.encode(pixels)
            with stage("search"):
                results.extend(self.caption_features(grid, beam))
        return results

    def caption_pixels(self, pixels: np.ndarray, beam: int = 3) -> list[CaptionResult]:
        """uint8 (N, S, S, 3) already decoded and resized with captioning.images."""
        grid, _ = self.encoder.encode(pixels)
        return self.caption_features(grid, beam)

    def caption_features(self, grid: np.ndarray, beam: int = 3) -> list[CaptionResult]:
        """Beam width 1 is greedy search (no repeat blocking: it takes the likeliest word, as in training)."""
        beam = max(beam, 1)
        if beam not in self.beam_searches:  # traced on first use (warm_up does beam 3)
            self.beam_searches[beam] = CompiledBeamSearch(
                self.compiled, self.vocab.start_id, self.vocab.end_id, self.config.decoder.max_words, beam
            )
        content_words = self.content_words if self.config.block_repeats and beam > 1 else None
        hypotheses = self.beam_searches[beam](grid, self.config.length_penalty, content_words)
        return [self._result(h) for h in hypotheses]

    def attend(self, image: ImageInput, text: str) -> tuple[np.ndarray, CaptionResult]:
        """(the image as the encoder saw it, uint8 S×S×3; where the decoder looks for each word of
        `text`), for a caption already given: its words are fed to the decoder, not searched for, so
        the map is of exactly these words (unknown ones are fed as <unk>; a text is cut at the
        most words a search produces, max_words + 1). `log_prob` is not computed (0)."""
        pixels = load_image_array(image, self.encoder.input_size, self.max_pixels)
        grid, _ = self.encoder.encode(pixels[None])
        words = tokenize(text)[: self.config.decoder.max_words + 1]
        ids = [self.vocab.index.get(word, self.vocab.unk_id) for word in words]
        attention = forced_attention(self.compiled, grid, self.vocab.start_id, ids)
        return pixels, CaptionResult(" ".join(words), words, attention, self.encoder.grid_size, 0.0)

    def _result(self, hypothesis: Hypothesis) -> CaptionResult:
        words = self.vocab.decode(hypothesis.ids)
        return CaptionResult(" ".join(words), words, hypothesis.attention[: len(words)], self.encoder.grid_size, hypothesis.log_prob)
