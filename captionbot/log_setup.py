"""The one logging setup of every `captionbot` subcommand (and so of `captionbot up`'s children).

The bot token is part of every Bot API URL, and httpx logs each request URL at INFO: httpx and
httpcore are held at WARNING, and every record, whichever logger or handler it goes through
(RQ's worker adds handlers of its own), has the token taken out of its message, its arguments and
its traceback before anything formats it.
"""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable

REDACTED = "[token redacted]"
# A Bot API token in a URL path, whoever's it is: /bot<digits>:<35 characters>/method.
TOKEN_PATTERN = re.compile(r"bot\d+:[A-Za-z0-9_-]{30,}")
QUIET_LOGGERS = ("httpx", "httpcore")
# Start-up chatter (Alembic's "Context impl…", TensorFlow's and absl's notices), shown only with -v.
CHATTY_LOGGERS = ("alembic", "tensorflow", "absl", "h5py")
# TensorFlow's C++ log level: 2 keeps its INFO and WARNING lines (oneDNN, CPU features, cuDNN
# factories) out; its errors still show. Children of `captionbot up` inherit it.
QUIET_TF_CPP_MIN_LOG_LEVEL = "2"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class TokenRedactor(logging.Filter):
    """Replaces the configured tokens, and anything shaped like a token in a URL, in a record."""

    def __init__(self, tokens: Iterable[str | None] = ()) -> None:
        super().__init__()
        self.tokens = sorted({token for token in tokens if token}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for token in self.tokens:
            text = text.replace(token, REDACTED)
        return TOKEN_PATTERN.sub(f"bot{REDACTED}", text)

    def filter(self, record: logging.LogRecord) -> bool:
        """Always keeps the record; it only rewrites it (the message is formatted here, once)."""
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: let the handler report it as it would
            return True
        record.msg = self.redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


_redactor = TokenRedactor()
_base_factory = logging.getLogRecordFactory()


def _redacted_record(*args, **kwargs) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    _redactor.filter(record)
    return record


def install_redaction(tokens: Iterable[str | None]) -> TokenRedactor:
    """Redact `tokens` (and token-shaped URL parts) from every record made from now on.

    A record factory rather than a handler filter: it reaches records of every logger, through
    every handler, including handlers added later. Calling it again replaces the tokens.
    """
    global _redactor
    _redactor = TokenRedactor(tokens)
    logging.setLogRecordFactory(_redacted_record)
    return _redactor


def configure_logging(tokens: Iterable[str | None], verbose: bool = False) -> None:
    """Log to stderr at INFO (DEBUG if verbose), Bot API URLs never logged, tokens redacted;
    TensorFlow's and Alembic's start-up messages only if verbose (a TF_CPP_MIN_LOG_LEVEL set
    by hand is kept)."""
    install_redaction(tokens)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format=LOG_FORMAT)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    if verbose:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", QUIET_TF_CPP_MIN_LOG_LEVEL)
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    _quiet_absl()


def _quiet_absl() -> None:
    """absl (under TensorFlow and Keras) has a verbosity of its own besides its logger's level."""
    try:
        from absl import logging as absl_logging
    except ImportError:
        return
    absl_logging.set_verbosity(absl_logging.WARNING)


def configured_tokens() -> list[str | None]:
    """The token and the webhook secret from the settings (environment or .env); none if the
    settings do not load, so a broken configuration still reaches the log that says what is wrong
    with it."""
    try:
        from service.settings import get_settings

        settings = get_settings()
        return [settings.telegram_token, settings.telegram_webhook_secret]
    except Exception:
        return []
