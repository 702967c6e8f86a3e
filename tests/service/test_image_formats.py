"""One list of accepted image formats: the bytes decide (sniff, then only that format's decoder),
the declared MIME type is a hint that refuses only what is plainly no image, and the sentence users
read names exactly the formats on the list."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, features

from captioning.images import CorruptImageError, UnsupportedImageError
from service.image_formats import (
    ACCEPTED_FORMATS,
    ACCEPTED_FORMATS_SENTENCE,
    JPEG,
    PNG,
    UNSUPPORTED_FORMAT_REPLY,
    WEBP,
    may_be_accepted_image,
    sniff,
)
from worker.media import guess_extension
from worker.photo_check import decode_photo


def encode(fmt: str, **options) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 255, (24, 32, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    buffer = io.BytesIO()
    if fmt == "MPO":
        options = {"save_all": True, "append_images": [image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]}
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.mark.parametrize(("fmt", "expected"), [("JPEG", JPEG), ("MPO", JPEG), ("PNG", PNG), ("WEBP", WEBP)])
def test_each_accepted_format_is_recognised_by_its_bytes_and_decodes_to_rgb(fmt, expected):
    data = encode(fmt)
    assert sniff(data) is expected
    assert guess_extension(data) == expected.extension
    image = decode_photo(data, max_pixels=10_000)
    assert (image.mode, image.size) == ("RGB", (32, 24))


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF", "ICO", "PPM"])
def test_formats_off_the_list_are_refused_before_any_decoder_runs(fmt):
    data = encode(fmt)
    assert sniff(data) is None and guess_extension(data) == ".bin"
    with pytest.raises(UnsupportedImageError):
        decode_photo(data, max_pixels=10_000)


def test_bytes_that_start_like_an_accepted_format_but_break_off_are_corrupt_not_unsupported():
    data = encode("PNG")
    with pytest.raises(CorruptImageError):
        decode_photo(data[:20], max_pixels=10_000)
    with pytest.raises(CorruptImageError):
        decode_photo(b"\xff\xd8\xff" + b"\x00" * 40, max_pixels=10_000)


def test_every_listed_decoder_is_one_pillow_has():
    Image.init()
    assert all(name in Image.OPEN for image_format in ACCEPTED_FORMATS for name in image_format.pillow_formats)
    assert features.check("webp")


@pytest.mark.parametrize(
    "mime_type",
    [None, "", "application/octet-stream", "image/jpeg", "IMAGE/PNG", "image/webp", "image/jpg", "image/tiff",
     "image/heic", "image/jpeg; charset=binary"],
)
def test_a_listed_generic_missing_or_other_image_type_leaves_the_verdict_to_the_bytes(mime_type):
    assert may_be_accepted_image(mime_type)


@pytest.mark.parametrize("mime_type", ["application/pdf", "video/mp4", "text/plain", "audio/ogg", "application/zip"])
def test_a_type_that_names_something_other_than_an_image_is_refused_up_front(mime_type):
    assert not may_be_accepted_image(mime_type)


def test_the_sentence_names_exactly_the_listed_formats():
    assert ACCEPTED_FORMATS_SENTENCE == "I can describe photos and images in JPEG, PNG or WebP format."
    assert ACCEPTED_FORMATS_SENTENCE in UNSUPPORTED_FORMAT_REPLY
