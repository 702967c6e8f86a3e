"""Getting a request's photo ready to caption: download it through the Bot API and decode it.

What no retry would change (too big, refused by Telegram, not an image, damaged) raises
`PhotoRefused`; Telegram being unavailable raises BotApiUnavailable, for rq.Retry.
"""
from __future__ import annotations

import logging

from PIL import Image

from captioning.images import ImageError, UnsupportedImageError
from service.image_formats import UNSUPPORTED_FORMAT_REPLY
from worker.bot_api import BotApiClient, BotApiRejected, FileTooLarge
from worker.photo_check import decode_photo

log = logging.getLogger(__name__)

TOO_LARGE_TO_FETCH = "the file is too big for me to fetch"
NOT_FETCHABLE = "Telegram would not give me the file"


class PhotoRefused(Exception):
    """The photo cannot be captioned, and no retry would change that; `reply`, when given, is
    the whole answer instead of FAILED_FOR_GOOD with the explanation."""

    def __init__(self, reason: str, explanation: str, reply: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.explanation = explanation
        self.reply = reply


def download_photo(bot_api: BotApiClient, request_id: int, file_id: str, max_bytes: int) -> bytes:
    try:
        return bot_api.download_file(file_id, max_bytes)
    except FileTooLarge as error:
        raise PhotoRefused("file_too_big", TOO_LARGE_TO_FETCH) from error
    except BotApiRejected as error:
        log.warning("request %s: download refused: %s", request_id, error)
        raise PhotoRefused("download_refused", NOT_FETCHABLE) from error


def decode_or_refuse(data: bytes, max_pixels: int) -> Image.Image:
    try:
        return decode_photo(data, max_pixels)
    except UnsupportedImageError as error:  # the bot's answer to a PDF, whatever the file claimed to be
        raise PhotoRefused(error.reason, str(error), UNSUPPORTED_FORMAT_REPLY) from error
    except ImageError as error:
        raise PhotoRefused(error.reason, str(error)) from error
