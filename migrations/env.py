"""How Alembic reaches the database: the URL passed by `store.db.upgrade_database`, else
DATABASE_URL through the settings. SQLite gets batch mode, since it cannot ALTER most things."""
from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection, create_engine, pool

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
    from captionbot.settings import get_settings

    return get_settings().resolved_database_url


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
