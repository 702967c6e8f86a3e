"""Helpers for the sandbox tests: a real python-telegram-bot Bot pointed at the sandbox, images."""
from __future__ import annotations

import io

from PIL import Image

from sandbox import SandboxServer


def make_bot(server: SandboxServer, token: str | None = None):
    """A real telegram.Bot talking to the sandbox over HTTP."""
    from telegram import Bot

    return Bot(token or server.token, base_url=server.api_base, base_file_url=server.file_base)


def jpeg_bytes(width: int = 400, height: int = 300, color: tuple[int, int, int] = (200, 60, 40)) -> bytes:
    image = Image.new("RGB", (width, height), color)
    for x in range(0, width, 20):  # some detail, so the JPEG is not trivially small
        for y in range(height):
            image.putpixel((x, y), (x % 256, y % 256, 90))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()
