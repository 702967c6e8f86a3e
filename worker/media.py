"""The media store: every photo kept once, named by the sha256 of its bytes.

Kept for feedback and retraining. The same photo sent twice (or by two people) is one file;
`store.queries.forget_user` says which files no request refers to any more.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from service.image_formats import sniff


@dataclass(frozen=True)
class StoredMedia:
    path: Path  # absolute
    sha256: str


def guess_extension(data: bytes) -> str:
    """The file type from its first bytes (the name people gave it is not trusted)."""
    image_format = sniff(data)
    return ".bin" if image_format is None else image_format.extension


class MediaStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def path_for(self, sha256: str, extension: str) -> Path:
        """Two levels of folders keep any one folder small: ab/cd/abcd….jpg."""
        return self.root / sha256[:2] / sha256[2:4] / f"{sha256}{extension}"

    def locate(self, data: bytes) -> StoredMedia:
        """Where these bytes are (or will be) kept, without writing them."""
        sha256 = hashlib.sha256(data).hexdigest()
        return StoredMedia(path=self.path_for(sha256, guess_extension(data)), sha256=sha256)

    def store(self, data: bytes) -> StoredMedia:
        """Write the bytes once (atomically: a crash leaves no half file); later calls reuse it."""
        media = self.locate(data)
        path = media.path
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
            try:
                with os.fdopen(handle, "wb") as file:
                    file.write(data)
                os.replace(temporary, path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        return media
