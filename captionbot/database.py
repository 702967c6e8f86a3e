"""The database a subcommand needs, up to date before it is used.

Commands run by hand (`models`, `model activate`, `retrain`) bring it up to date as `captionbot up`
does: migrating is idempotent and quick. The long-running `bot` and `worker`, of which production
starts several at once, only check, and say in one line to run `captionbot migrate` (docker
compose's one-shot `migrate` service does): two processes migrating side by side could collide.
"""
from __future__ import annotations

import logging

from sqlalchemy.engine import make_url

from captionbot.errors import CommandError
from service.settings import Settings
from store.db import schema_revisions, upgrade_database
from store.outages import DATABASE_OUTAGES, first_line

log = logging.getLogger(__name__)


def shown_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def migrated_database_url(settings: Settings) -> str:
    """Apply any pending migration (a SQLite file and its folder are created); returns the URL."""
    url = settings.resolved_database_url
    upgrade_database(url)
    return url


def require_current_schema(settings: Settings) -> None:
    """Raise CommandError, naming the command to run, unless the database is at the newest revision."""
    url = settings.resolved_database_url
    try:
        current, head = schema_revisions(url)
    except DATABASE_OUTAGES as error:  # the bot and workers ride out outages; they start regardless
        log.warning("could not check the database schema (%s); starting anyway", first_line(error))
        return
    if current != head:
        state = "has no schema yet" if current is None else f"is at revision {current}, not {head}"
        raise CommandError(f"the database {shown_url(url)} {state}: run `captionbot migrate` first")
