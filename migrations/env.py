"""How Alembic reaches the database: the URL passed by `store.db.upgrade_database`, else
DATABASE_URL, else the one-machine SQLite file in DATA_DIR, resolved as the settings do (store/db.py)
so that migrations need nothing above the store. SQLite gets batch mode: it cannot ALTER most things."""
from __future__ import annotations

import os
from logging.config import fileConfig
from pathlib import Path

from alembic import context
from sqlalchemy import Connection, create_engine, pool

from store.db import DEFAULT_DATA_DIR, sqlite_file_url
from store.models import Base, UTCDateTime

config = context.config
target_metadata = Base.metadata

# From the alembic command line, log as alembic.ini says; inside a running service, leave its logging be.
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def database_url() -> str:
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    if url:
        return url
    data_dir = Path(os.environ.get("DATA_DIR") or DEFAULT_DATA_DIR)
    return os.environ.get("DATABASE_URL") or sqlite_file_url(data_dir)


def render_item(kind: str, item: object, autogen_context: object) -> str | bool:
    """Write the models' UTC timestamp type as the plain DateTime it is in the database."""
    if kind == "type" and isinstance(item, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(**options: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        render_item=render_item,
        render_as_batch=True,  # only SQLite needs it; harmless elsewhere
        **options,
    )


def run_migrations_offline() -> None:
    """Print the SQL instead of running it (alembic upgrade --sql)."""
    _configure(url=database_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def _run_with(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_with(connection)
        return
    # A plain engine on purpose: SQLite foreign keys stay off here, so batch mode's
    # copy-and-drop of a table does not cascade-delete the rows that point at it.
    engine = create_engine(database_url(), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            _run_with(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
