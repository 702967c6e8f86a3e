"""Decoding images people send, safely, into the RGB arrays the encoders were trained on.

Training images were squashed to a square (see the Flickr8k README), so inference squashes too:
the same resize on both sides matters more than keeping the aspect ratio.
"""
from __future__ import annotations

import io
import struct
import warnings
from collections.abc import Collection
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 40_000_000
# What Pillow's decoders raise on malformed bytes: Image.open treats SyntaxError, IndexError,
# TypeError and struct.error as "not this format"; loading adds OSError, ValueError and EOFError
# (fuzzing found TypeError from a TIFF whose strip offset is a fraction).
MALFORMED_IMAGE_ERRORS = (OSError, SyntaxError, ValueError, TypeError, IndexError, struct.error, EOFError)


class ImageError(ValueError):
    """An image that cannot be captioned; `reason` is a short machine-readable code."""

    reason = "bad_image"


class CorruptImageError(ImageError):
    reason = "corrupt_image"


class UnsupportedImageError(ImageError):
    reason = "unsupported_format"


class ImageTooLargeError(ImageError):
    reason = "image_too_large"


def open_image(
    source: str | Path | bytes | Image.Image,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    formats: Collection[str] | None = None,
) -> Image.Image:
    """Open, check and fully decode an image into RGB, with EXIF orientation applied.

    `formats` are the Pillow decoders to try (e.g. ("JPEG",), which reads MPO too); Pillow runs no
    other decoder on the bytes. None tries every format Pillow knows: for files of our own, such
    as the dataset, never for what strangers send. The pixel limit is checked from the header,
    before any pixel is decoded, so a decompression bomb costs nothing.
    """
    if isinstance(source, Image.Image):
        image = source
    else:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        if not data:
            raise CorruptImageError("the file is empty")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image = Image.open(io.BytesIO(data), formats=None if formats is None else list(formats))
        except UnidentifiedImageError as exc:
            raise UnsupportedImageError("this file is not an image I can read") from exc
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageTooLargeError("the image has too many pixels") from exc
        except MALFORMED_IMAGE_ERRORS as exc:  # a header that ends early or lies
            raise CorruptImageError("the image file is damaged or truncated") from exc
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLargeError(f"the image is {width}×{height}, more than {max_pixels:,} pixels")
    try:
        image.load()
        image = ImageOps.exif_transpose(image)
    except MALFORMED_IMAGE_ERRORS as exc:
        raise CorruptImageError("the image file is damaged or truncated") from exc
    return to_rgb(image)


def to_rgb(image: Image.Image) -> Image.Image:
    """Grayscale, CMYK, palette and alpha images become RGB; transparency is laid over white."""
    if image.mode == "RGB":
        return image
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def resize_for_encoder(image: Image.Image, size: int) -> np.ndarray:
    """Squash to size×size (as the training images were) and return uint8 (size, size, 3)."""
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.uint8)


def load_image_array(
    source: str | Path | bytes | Image.Image,
    size: int,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    formats: Collection[str] | None = None,
) -> np.ndarray:
    """Everything in one call: decode safely, orient, convert, resize."""
    return resize_for_encoder(open_image(source, max_pixels, formats), size)
