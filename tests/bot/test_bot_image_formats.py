"""Which files get captioned is decided by their bytes, against one list of formats
(service/image_formats.py), through the sandbox, the real bot and a real worker: a declared MIME
type is only a hint, and /help names the same formats the worker accepts."""
from __future__ import annotations

import io

from PIL import Image
from service_stack import jpeg_bytes

from service.image_formats import ACCEPTED_FORMATS, ACCEPTED_FORMATS_SENTENCE, UNSUPPORTED_FORMAT_REPLY
from store.models import RequestStatus

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def tiff_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), "orange").save(buffer, "TIFF")
    return buffer.getvalue()


def answer(stack, user_id: int, data: bytes, filename: str, mime_type: str) -> tuple[str, str, str | None]:
    """(the bot's reply text, the request's status, its error reason) for one document."""
    sent = stack.client.send_document(user_id, data, filename, mime_type)
    reply = stack.client.wait_for_message(user_id, timeout=60, after_message_id=sent["message_id"])
    request = stack.finished_request(user_id, sent["message_id"])
    return reply["text"], request.status.value, request.error_reason


def test_a_real_jpeg_declared_as_octet_stream_is_captioned(stack, user_id):
    sent = stack.client.send_document(user_id, jpeg_bytes(seed=31), "photo", "application/octet-stream")
    reply = stack.reply_to(user_id, sent["message_id"], timeout=60)
    assert [button["text"] for button in reply["reply_markup"]["inline_keyboard"][0]] == ["👍", "👎", "✏️", "🔍"]
    assert stack.finished_request(user_id, sent["message_id"]).status is RequestStatus.done


def test_a_tiff_declared_as_png_gets_exactly_the_answer_a_tiff_declared_as_tiff_gets(stack, user_id):
    honest = answer(stack, user_id, tiff_bytes(), "scan.tiff", "image/tiff")
    disguised = answer(stack, user_id, tiff_bytes(), "scan.png", "image/png")
    assert honest == disguised == (UNSUPPORTED_FORMAT_REPLY, "failed", "unsupported_format")


def test_a_pdf_declared_as_jpeg_is_refused_by_its_content_with_the_formats_sentence(stack, user_id):
    assert answer(stack, user_id, PDF, "photo.jpg", "image/jpeg") == (UNSUPPORTED_FORMAT_REPLY, "failed", "unsupported_format")
    assert ACCEPTED_FORMATS_SENTENCE in UNSUPPORTED_FORMAT_REPLY


def test_a_pdf_video_or_text_declared_as_such_is_refused_by_the_bot_with_the_same_sentence(stack, user_id):
    for data, filename, mime_type in [(PDF, "report.pdf", "application/pdf"), (b"\x00\x00\x00\x18ftypmp42", "clip.mp4", "video/mp4"),
                                      (b"hello", "notes.txt", "text/plain")]:
        assert answer(stack, user_id, data, filename, mime_type) == (UNSUPPORTED_FORMAT_REPLY, "failed", "unsupported_format")


def test_help_names_every_accepted_format_in_the_formats_sentence(stack, user_id):
    sent = stack.client.send_text(user_id, "/help")
    text = stack.bot_says(user_id, "MB", after=sent["message_id"])["text"]
    assert ACCEPTED_FORMATS_SENTENCE in text
    assert all(image_format.name in text for image_format in ACCEPTED_FORMATS)
    assert "TIFF" not in text and "GIF" not in text
