"""Image decoding on what people really send: each bad file raises a clear error type."""
import io

import numpy as np
import pytest
from PIL import Image

from captioning.images import (
    CorruptImageError,
    ImageTooLargeError,
    UnsupportedImageError,
    load_image_array,
    open_image,
)


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def test_truncated_jpeg_raises_corrupt_image_error():
    jpeg = encode(Image.new("RGB", (64, 64), "red"), "JPEG")
    with pytest.raises(CorruptImageError):
        open_image(jpeg[: len(jpeg) // 2])


def test_pdf_renamed_jpg_raises_unsupported_image_error(tmp_path):
    fake = tmp_path / "photo.jpg"
    fake.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
    with pytest.raises(UnsupportedImageError):
        open_image(fake)


def test_decompression_bomb_raises_too_large_before_decoding():
    bomb = encode(Image.new("1", (30000, 30000)), "PNG")  # a few kB on disk, 900 Mpx decoded
    assert len(bomb) < 500_000
    with pytest.raises(ImageTooLargeError):
        open_image(bomb, max_pixels=40_000_000)


def test_empty_file_is_corrupt():
    with pytest.raises(CorruptImageError):
        open_image(b"")


def test_exif_orientation_is_applied():
    wide = Image.new("RGB", (80, 40), "blue")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    rotated = open_image(encode(wide, "JPEG", exif=exif))
    assert rotated.size == (40, 80)


def test_alpha_is_laid_over_white_and_modes_become_rgb():
    transparent = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    assert open_image(encode(transparent, "PNG")).getpixel((0, 0)) == (255, 255, 255)
    for mode in ("L", "CMYK", "P"):
        fmt = "JPEG" if mode == "CMYK" else "PNG"
        assert open_image(encode(Image.new(mode, (8, 8)), fmt)).mode == "RGB"


def test_images_are_squashed_to_the_encoder_square_like_the_training_images():
    array = load_image_array(encode(Image.new("RGB", (500, 333), "green"), "JPEG"), 224)
    assert array.shape == (224, 224, 3) and array.dtype == np.uint8
