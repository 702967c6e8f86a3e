"""What the fuzzers feed and what they accept.

Each target has seed inputs (bytes) and a check that may raise only the target's declared error
for bad input; any other exception, including an AssertionError from a broken promise (an image
over the pixel limit, a parsed button that does not re-encode to its data), is a crash.
tests/fuzz/ runs every target briefly under hypothesis; benchmarks/fuzz.py runs them long.
"""
from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
from checkpoint_files import small_checkpoint
from PIL import Image

from bot.corrections import clean_correction
from service.feedback_buttons import (
    attention_callback_data,
    callback_data,
    cancel_callback_data,
    forget_callback_data,
    parse_attention_callback_data,
    parse_callback_data,
    parse_cancel_callback_data,
    parse_forget_callback_data,
)
from captioning.images import ImageError, open_image
from captioning.text import normalize_caption, tokenize
from captioning.torch_checkpoint import CheckpointError, read_legacy_state_dict
from service.image_formats import ACCEPTED_FORMATS, sniff
from worker.media import guess_extension
from worker.photo_check import decode_photo

MAX_PIXELS = 1_000_000  # small, so that mutated sizes meet the limit often
INTERESTING = (b"\x00", b"\xff", b"\x7f", b"\x80", b"\xff\xff", b"\x00\x00", b"\x7f\xff\xff\xff",
               b"\xff\xff\xff\xff", b"\x80\x00\x00\x00", b"\x00\x01\x00\x00", b"\xff" * 8, b"\x7f" + b"\xff" * 7)
Edit = tuple[int, int, int, bytes]  # (kind, position, span, payload)


def mutate(data: bytes, edits: Sequence[Edit]) -> bytes:
    """Apply edits in turn: overwrite, insert, delete, duplicate, truncate, flip a bit, or write an
    interesting integer (0, -1, the limits of signed types), at a position taken modulo the length."""
    buffer = bytearray(data)
    for kind, position, span, payload in edits:
        at = position % (len(buffer) + 1)
        if kind == 0:
            buffer[at : at + len(payload)] = payload
        elif kind == 1:
            buffer[at:at] = payload
        elif kind == 2:
            del buffer[at : at + span]
        elif kind == 3:
            buffer[at:at] = buffer[at : at + span]
        elif kind == 4:
            del buffer[at:]
        elif kind == 5 and at < len(buffer):
            buffer[at] ^= 1 << (span % 8)
        elif kind == 6:
            value = INTERESTING[span % len(INTERESTING)]
            buffer[at : at + len(value)] = value
    return bytes(buffer)


EDIT_KINDS = 7


def as_text(data: bytes) -> str:
    """Bytes as a str Telegram could deliver: bad UTF-8 becomes lone surrogates, as JSON allows."""
    return data.decode("utf-8", "surrogateescape")


# --- seeds --------------------------------------------------------------------------------------
def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


@cache
def image_seeds() -> tuple[bytes, ...]:
    """Small real images of every kind that reaches the decoders, made with Pillow."""
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8))
    rgba = Image.fromarray(rng.integers(0, 255, (9, 7, 4), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: exercises exif_transpose
    frames = [rgb, rgb.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    return (
        _encode(rgb, "JPEG", quality=80),
        _encode(rgb, "JPEG", progressive=True, exif=exif),
        _encode(rgb.convert("CMYK"), "JPEG"),
        _encode(rgb, "MPO", save_all=True, append_images=frames[1:]),
        _encode(rgba, "PNG"),
        _encode(rgb.convert("P"), "PNG", transparency=0),
        _encode(rgb.convert("I;16"), "PNG"),
        _encode(rgb, "PNG", save_all=True, append_images=frames[1:]),  # APNG
        _encode(rgb, "WEBP", quality=70),
        _encode(rgba, "WEBP", lossless=True),
        _encode(rgb, "GIF", save_all=True, append_images=frames[1:]),
        _encode(rgb, "BMP"),
        _encode(rgb, "TIFF", compression="tiff_lzw"),
        _encode(rgba, "TIFF"),
    )


def text_seeds() -> tuple[bytes, ...]:
    return tuple(text.encode() for text in (
        callback_data(1, "up"), callback_data(987654321, "fix"), cancel_callback_data(42, "0a1b2c3d"), forget_callback_data("0a1b2c3d", "delete"),
        attention_callback_data(31337),
        "a dog runs on the grass", "A man's red-shirt…  on\ta bench!\n", "ÇA VA 123 ünïcödé 👍 İstanbul",
    ))


# --- checks -------------------------------------------------------------------------------------
def check_photo_decoding(data: bytes) -> None:
    """The worker's content check and decoding: an RGB image within the pixel limit, or ImageError."""
    image = decode_photo(data, MAX_PIXELS)
    assert image.mode == "RGB" and image.width * image.height <= MAX_PIXELS
    assert sniff(data) is not None


def check_any_format_decoding(data: bytes) -> None:
    """open_image with every Pillow decoder (the CLI's and training's local files): the same promise."""
    image = open_image(data, MAX_PIXELS)
    assert image.mode == "RGB" and image.width * image.height <= MAX_PIXELS


def check_format_sniffer(data: bytes) -> None:
    found = sniff(data)
    assert found is None or (found in ACCEPTED_FORMATS and found.matches(data))
    assert guess_extension(data) == (".bin" if found is None else found.extension)


def check_callback_data(data: bytes) -> None:
    check_callback_text(as_text(data))


def check_callback_text(text: str) -> None:
    """Only None or a press that re-encodes to exactly the data it came from."""
    press = parse_callback_data(text)
    assert press is None or callback_data(press.caption_id, press.action) == text
    cancel = parse_cancel_callback_data(text)
    assert cancel is None or cancel_callback_data(cancel.caption_id, cancel.prompt_token) == text
    forget = parse_forget_callback_data(text)
    assert forget is None or forget_callback_data(forget.token, forget.choice) == text
    attention = parse_attention_callback_data(text)
    assert attention is None or attention_callback_data(attention.caption_id) == text
    assert sum(parsed is not None for parsed in (press, cancel, forget, attention)) <= 1


def check_correction_text(data: bytes) -> None:
    check_correction(as_text(data))


def check_correction(text: str) -> None:
    """What a ✏️ answer goes through: whitespace folded, then the training normalisation."""
    cleaned = clean_correction(text)
    assert len(cleaned) <= len(text) and cleaned == cleaned.strip() and "  " not in cleaned
    assert not any(character.isspace() and character != " " for character in cleaned)
    normal = normalize_caption(cleaned)
    assert set(normal) <= set("abcdefghijklmnopqrstuvwxyz' ") and len(normal) <= len(cleaned.lower())
    assert all(word and " " not in word and word[0] != "'" and word[-1] != "'" for word in tokenize(cleaned))


def check_checkpoint_reader(data: bytes) -> None:
    """A state dict of arrays no bigger than the file, or CheckpointError."""
    state = read_legacy_state_dict(data)
    assert all(isinstance(array, np.ndarray) and array.nbytes <= len(data) for array in state.values())


@dataclass(frozen=True)
class Target:
    name: str
    seeds: Callable[[], Sequence[bytes]]
    check: Callable[[bytes], None]
    declared: tuple[type[BaseException], ...]  # what bad input may raise; anything else is a crash


TARGETS = (
    Target("photo_decoding", image_seeds, check_photo_decoding, (ImageError,)),
    Target("any_format_decoding", image_seeds, check_any_format_decoding, (ImageError,)),
    Target("format_sniffer", image_seeds, check_format_sniffer, ()),
    Target("callback_data", text_seeds, check_callback_data, ()),
    Target("correction_text", text_seeds, check_correction_text, ()),
    Target("checkpoint_reader", lambda: (small_checkpoint(),), check_checkpoint_reader, (CheckpointError,)),
)
