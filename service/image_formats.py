"""The image formats the bot accepts: one list for the worker's content check, the bot's first look
at a file's declared type, /help, and the media store's file names.

Accepted: JPEG (with MPO, the multi-picture JPEG some phone cameras write: Pillow reads its first
picture), PNG and WebP: what phones, browsers and Telegram itself make.
Not accepted, on purpose:
- GIF: Telegram turns a GIF sent to a bot into an MP4 animation, so one rarely arrives as a file,
  and the first frame of an animation often does not show what the animation is about.
- BMP: uncompressed and almost never shared; one more decoder for strangers' bytes buys nothing.
- TIFF: many compressions, pages and tags read through libtiff, historically Pillow's largest
  source of decoder vulnerabilities; photos reach chats as JPEG, not TIFF.
Every format accepted is a parser that untrusted bytes reach, so the list stays short.

The bytes decide (`sniff`); a file's declared MIME type is only a hint, since Telegram guesses it
from the file name.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ImageFormat:
    name: str  # as users read it
    pillow_formats: tuple[str, ...]  # Image.open(formats=...): the only decoders Pillow tries
    mime_types: tuple[str, ...]  # the usual one first, then aliases seen in the wild
    signatures: tuple[tuple[tuple[int, bytes], ...], ...]  # any one matches: (offset, bytes) parts
    extension: str  # for the media store

    def matches(self, data: bytes) -> bool:
        return any(all(data[at : at + len(part)] == part for at, part in signature) for signature in self.signatures)


# Pillow's JPEG decoder also reads MPO (it reports "MPO"); "MPO" is no decoder of its own.
JPEG = ImageFormat("JPEG", ("JPEG",), ("image/jpeg", "image/jpg", "image/pjpeg"), (((0, b"\xff\xd8\xff"),),), ".jpg")
PNG = ImageFormat("PNG", ("PNG",), ("image/png", "image/x-png", "image/apng"), (((0, b"\x89PNG\r\n\x1a\n"),),), ".png")
WEBP = ImageFormat("WebP", ("WEBP",), ("image/webp",), (((0, b"RIFF"), (8, b"WEBP")),), ".webp")

ACCEPTED_FORMATS: tuple[ImageFormat, ...] = (JPEG, PNG, WEBP)

# Declared types that say nothing about the content: the bytes decide.
GENERIC_MIME_TYPES = frozenset({"application/octet-stream", "binary/octet-stream", "application/unknown", ""})


def format_names() -> str:
    """"JPEG, PNG or WebP"."""
    names = [image_format.name for image_format in ACCEPTED_FORMATS]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


ACCEPTED_FORMATS_SENTENCE = f"I can describe photos and images in {format_names()} format."
UNSUPPORTED_FORMAT_REPLY = f"I can't read this file. {ACCEPTED_FORMATS_SENTENCE} Please send a photo."


def sniff(data: bytes) -> ImageFormat | None:
    """The accepted format these bytes start like, or None."""
    return next((image_format for image_format in ACCEPTED_FORMATS if image_format.matches(data)), None)


def may_be_accepted_image(declared_mime_type: str | None) -> bool:
    """False only when the declared type names something other than an image (a PDF, a video,
    text): any image/* type, a generic one or none leaves the verdict to the content check, since
    a photo named .tiff or .heic by mistake is still a JPEG."""
    if declared_mime_type is None:
        return True
    mime_type = declared_mime_type.split(";", 1)[0].strip().lower()
    return mime_type in GENERIC_MIME_TYPES or mime_type.startswith("image/")
