"""How a failed subcommand speaks: one line naming the cause, the traceback only with `-v`."""
from __future__ import annotations

from store.outages import first_line

VERBOSE_HINT = "run with -v for the traceback"


class CommandError(Exception):
    """A failure the person at the terminal can fix; its message is the whole line they see."""


def one_line(command: str, error: BaseException) -> str:
    """`captionbot <command>: <cause>`; an unforeseen error also names its type and how to see more."""
    if isinstance(error, CommandError):
        return f"captionbot {command}: {error}"
    return f"captionbot {command}: {first_line(error)} ({VERBOSE_HINT})"
