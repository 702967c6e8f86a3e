"""Service subcommands: up, bot, worker, migrate, sandbox."""
from __future__ import annotations

import argparse
import logging


def register(commands: argparse._SubParsersAction) -> None:
    """Filled in with the service."""
    register_migrate(commands)


def register_migrate(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "migrate", help="bring the database schema up to date (Alembic upgrade)"
    )
    parser.add_argument(
        "--database-url", help="database to migrate (default: DATABASE_URL or the SQLite file)"
    )
    parser.add_argument("--revision", default="head", help="schema revision to reach (default: head)")
    parser.set_defaults(handler=run_migrate)


def run_migrate(args: argparse.Namespace) -> int:
    """Apply the migrations; safe to run again, and run once before the bot and workers start."""
    from sqlalchemy.engine import make_url

    from captionbot.settings import get_settings
    from store.db import upgrade_database

    url = args.database_url or get_settings().resolved_database_url
    upgrade_database(url, args.revision)
    shown = make_url(url).render_as_string(hide_password=True)
    logging.getLogger(__name__).info("database %s is at revision %s", shown, args.revision)
    return 0
