"""The content check on a photo someone sent: its bytes must start like one of the accepted
formats (service.image_formats) before any decoder runs, and then only that format's decoder
runs. What the file claimed to be plays no part."""
from __future__ import annotations

from PIL import Image

from captioning.images import CorruptImageError, UnsupportedImageError, open_image
from service.image_formats import sniff


def decode_photo(data: bytes, max_pixels: int) -> Image.Image:
    """An RGB image, or an ImageError subclass (UnsupportedImageError for any other format)."""
    image_format = sniff(data)
    if image_format is None:
        raise UnsupportedImageError("the file is not one of the accepted image formats")
    try:
        return open_image(data, max_pixels=max_pixels, formats=image_format.pillow_formats)
    except UnsupportedImageError as error:  # it starts like the format, so the rest is damaged
        raise CorruptImageError("the image file is damaged or truncated") from error
