"""The media store keeps each photo once, under the sha256 of its bytes."""
from __future__ import annotations

import hashlib

from worker.media import MediaStore, guess_extension


def test_same_bytes_are_stored_once_under_their_sha256(tmp_path):
    store = MediaStore(tmp_path / "media")
    data = b"\xff\xd8\xff\xe0" + b"jpeg body" * 10
    first, second = store.store(data), store.store(data)
    assert first == second
    assert first.sha256 == hashlib.sha256(data).hexdigest()
    assert first.path.read_bytes() == data
    assert first.path.name == f"{first.sha256}.jpg"
    assert first.path.is_relative_to(tmp_path / "media")
    assert [p.name for p in (tmp_path / "media").rglob("*") if p.is_file()] == [first.path.name]


def test_extension_comes_from_the_bytes_not_the_name():
    assert guess_extension(b"\x89PNG\r\n\x1a\n....") == ".png"
    assert guess_extension(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == ".webp"
    assert guess_extension(b"%PDF-1.7") == ".bin"
