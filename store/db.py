"""Engines, sessions and schema upgrades, for PostgreSQL in production and a SQLite file on one machine."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1] / "var"


@dataclass(frozen=True)
class DatabaseTimeouts:
    """How long a connection may take, and a statement may run, before it fails instead of hanging.

    PostgreSQL gets `connect_timeout` and `statement_timeout`; a SQLite file waits up to
    `statement_s` for another process's write lock (its busy timeout).
    """

    connect_s: float = 10.0
    statement_s: float = 30.0


def _postgres_url(parsed: URL, timeouts: DatabaseTimeouts) -> URL:
    """The URL with libpq's connect_timeout and a statement_timeout added to its `options`
    (kept beside options it already has, such as a search_path; its own timeouts win)."""
    query = dict(parsed.query)
    existing = query.get("options", "")
    if isinstance(existing, tuple):
        existing = " ".join(existing)
    if "statement_timeout" not in existing:
        statement_ms = max(1, round(timeouts.statement_s * 1000))
        existing = f"{existing} -c statement_timeout={statement_ms}".strip()
    query["options"] = existing
    # libpq takes whole seconds, and treats anything under 2 as 2.
    query.setdefault("connect_timeout", str(max(2, round(timeouts.connect_s))))
    return parsed.set(query=query)


def _prepare_sqlite(engine: Engine, busy_timeout_s: float) -> None:
    """Foreign keys on (SQLite leaves them off), and writers that wait for each other.

    The bot and the workers share one SQLite file in one-machine mode. SQLAlchemy emits
    BEGIN IMMEDIATE itself, so a transaction takes the write lock when it starts and waits
    (busy timeout) rather than failing halfway when another process committed first.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # pysqlite must not emit its own BEGIN
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={round(busy_timeout_s * 1000)}")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def sqlite_file_url(data_dir: Path) -> str:
    """The one-machine database: a SQLite file in the data directory (DATA_DIR)."""
    return f"sqlite:///{data_dir / 'captionbot.db'}"


def make_engine(url: str, timeouts: DatabaseTimeouts = DatabaseTimeouts()) -> Engine:
    """An Engine for `url` whose connections and statements time out. A SQLite file's folder is
    created; SQLite connections work from threads."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return create_engine(_postgres_url(parsed, timeouts), pool_pre_ping=True, pool_timeout=timeouts.connect_s)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_timeout=timeouts.connect_s)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": timeouts.statement_s}
    )
    _prepare_sqlite(engine, timeouts.statement_s)
    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    # Objects stay readable after commit: handlers use them to build the reply.
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: committed if the block ends normally, rolled back if it raises."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(url: str):
    """The Alembic configuration shipped inside the migrations package, pointed at `url`."""
    from alembic.config import Config

    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = url
    config.attributes["configure_logger"] = False
    return config


def upgrade_database(url: str, revision: str = "head") -> None:
    """Bring the schema at `url` up to `revision` (a SQLite file's folder is created first)."""
    from alembic import command

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)


def schema_revisions(url: str) -> tuple[str | None, str]:
    """(the database's revision, None if never migrated; the newest revision shipped)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        if not Path(parsed.database).expanduser().exists():  # connecting would create an empty file
            return None, head
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
    return current, head


def downgrade_database(url: str, revision: str = "base") -> None:
    from alembic import command

    command.downgrade(alembic_config(url), revision)
