"""Message entities as Telegram computes them: offsets in UTF-16 code units, bot commands and
@mentions found in incoming text and captions (python-telegram-bot's CommandHandler looks for the
first; a bot in a group looks for its own username in the second), and the HTML parse mode turned
into plain text plus entities, refusing markup Telegram refuses."""
from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

from sandbox.params import bad_request

_COMMAND = re.compile(r"^/[A-Za-z0-9_]{1,32}(@[A-Za-z0-9_]{3,64})?")
_MENTION = re.compile(r"(?<![A-Za-z0-9_/@])@[A-Za-z][A-Za-z0-9_]{3,31}\b")
_SIMPLE_TAGS = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline",
    "ins": "underline", "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough",
    "tg-spoiler": "spoiler", "code": "code", "pre": "pre", "blockquote": "blockquote",
}


def utf16_len(text: str) -> int:
    """Length as Telegram counts it (characters outside the BMP count twice)."""
    return len(text.encode("utf-16-le")) // 2


def command_entities(text: str) -> list[dict[str, Any]]:
    """The bot_command entity a Telegram client attaches to text starting with /command."""
    match = _COMMAND.match(text)
    if not match:
        return []
    return [{"type": "bot_command", "offset": 0, "length": utf16_len(match.group(0))}]


def incoming_entities(text: str) -> list[dict[str, Any]]:
    """What a Telegram client attaches to a user's text or caption: a leading /command and every
    @username mention (UTF-16 offsets)."""
    entities = command_entities(text)
    for match in _MENTION.finditer(text):
        entities.append({"type": "mention", "offset": utf16_len(text[:match.start()]),
                         "length": utf16_len(match.group(0))})
    return entities


class _TelegramHTML(HTMLParser):
    """Collects plain text and entities from Telegram's subset of HTML."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.length = 0
        self.open: list[tuple[str, dict[str, Any]]] = []
        self.entities: list[dict[str, Any]] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)
        self.length += utf16_len(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        entity: dict[str, Any] = {"offset": self.length}
        if tag in _SIMPLE_TAGS:
            entity["type"] = _SIMPLE_TAGS[tag]
        elif tag == "span" and attributes.get("class") == "tg-spoiler":
            entity["type"] = "spoiler"
        elif tag == "a" and attributes.get("href"):
            entity.update(type="text_link", url=attributes["href"])
        else:
            raise bad_request(f'can\'t parse entities: Unsupported start tag "{tag}"')
        if tag == "blockquote" and "expandable" in attributes:
            entity["type"] = "expandable_blockquote"
        self.open.append((tag, entity))

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1][0] != tag:
            raise bad_request(f'can\'t parse entities: Unmatched end tag "{tag}"')
        _, entity = self.open.pop()
        entity["length"] = self.length - entity["offset"]
        if entity["length"] > 0:
            self.entities.append(entity)


def parse_html(markup: str) -> tuple[str, list[dict[str, Any]]]:
    """Plain text and entities for `parse_mode=HTML`, or Telegram's "can't parse entities"."""
    parser = _TelegramHTML()
    parser.feed(markup)
    parser.close()
    if parser.open:
        tag = parser.open[-1][0]
        raise bad_request(
            f'can\'t parse entities: Can\'t find end tag corresponding to start tag "{tag}"'
        )
    entities = sorted(parser.entities, key=lambda e: (e["offset"], -e["length"]))
    return "".join(parser.parts), entities


def format_text(
    text: str, parse_mode: str | None, entities: list[dict[str, Any]] | None
) -> tuple[str, list[dict[str, Any]]]:
    """Apply a parse mode as Telegram would; Markdown modes pass through unparsed."""
    if entities:
        return text, entities
    if parse_mode and parse_mode.upper() == "HTML":
        return parse_html(text)
    return text, []
