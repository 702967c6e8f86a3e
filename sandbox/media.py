"""Files as the Bot API describes them: ids derived from content, a file_path per file, and the
several PhotoSize entries Telegram attaches to a photo (a small thumbnail and the full image)."""
from __future__ import annotations

import base64
import hashlib
import io
import warnings
from dataclasses import dataclass
from typing import Any

from PIL import Image

THUMBNAIL_SIDE = 90  # Telegram's smallest photo size ("s")
THUMBNAIL_MAX_PIXELS = 50_000_000  # larger images get no thumbnail instead of a long decode
_EXTENSIONS = {
    "image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/gif": "gif",
    "application/pdf": "pdf", "text/plain": "txt",
}


@dataclass(frozen=True)
class StoredFile:
    """One file the sandbox can serve through getFile and the file download URL."""

    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)


def unique_id_for(data: bytes) -> str:
    """Same bytes, same file_unique_id, as in Telegram."""
    return "AQAD" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode()[:12]


def file_id_for(data: bytes, kind: str) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(kind.encode() + data).digest()).decode()
    prefix = {"photo": "AgACAgQAAxkBAA", "document": "BQACAgQAAxkBAA"}.get(kind, "CAACAgQAAxkBAA")
    return prefix + digest.rstrip("=")[:40]


def extension_for(mime_type: str | None, filename: str | None = None) -> str:
    if filename and "." in filename:
        return filename.rsplit(".", 1)[1].lower()[:8] or "bin"
    return _EXTENSIONS.get(mime_type or "", "bin")


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from the header, or None for bytes that are not an image."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as image:
                return image.size
    except (Image.DecompressionBombError, OSError, ValueError, SyntaxError):
        return _png_size(data)  # Pillow refuses a bomb or a cut file; the header still says how big


def _png_size(data: bytes) -> tuple[int, int] | None:
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def make_thumbnail(data: bytes) -> tuple[bytes, int, int] | None:
    """A JPEG whose longer side is THUMBNAIL_SIDE, or None when the image cannot be decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as image:
                if image.width * image.height > THUMBNAIL_MAX_PIXELS:
                    return None
                image.draft("RGB", (THUMBNAIL_SIDE * 2, THUMBNAIL_SIDE * 2))
                thumb = image.convert("RGB")
                thumb.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
                out = io.BytesIO()
                thumb.save(out, format="JPEG", quality=80)
                return out.getvalue(), thumb.width, thumb.height
    except (Image.DecompressionBombError, OSError, ValueError, SyntaxError):
        return None


def photo_size(stored: StoredFile, width: int, height: int) -> dict[str, Any]:
    return {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": stored.size,
        "width": width,
        "height": height,
    }
