"""Which database errors mean "the database is unreachable or too slow right now".

Those are expected in production (a restart, a failover, a statement over its timeout): they are
logged in one line and answered with "try again", while any other database error is a bug and
keeps its traceback.
"""
from __future__ import annotations

from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# OperationalError covers refused and cut connections, connect and statement timeouts.
DATABASE_OUTAGES: tuple[type[Exception], ...] = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)


def first_line(error: BaseException) -> str:
    """The error in one log line: SQLAlchemy's text goes on with the statement and a help link."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")
