"""Request and caption ids are never reused: SQLite tables rebuilt with AUTOINCREMENT.

Without it SQLite hands the highest deleted id (after /forget) to the next row, so a job id
`caption-request-<id>` or a button's caption id could name someone else's row. PostgreSQL's
sequences never go back, so there this revision does nothing.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 09:00:00+00:00
"""
from typing import Sequence, Union

from alembic import context, op

revision: str = "0002"
down_revision: Union[str, Sequence[str], None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# Parents before children, so each copy finds the rows its foreign keys point at.
TABLES = ("caption_requests", "captions")


def _rebuild(autoincrement: bool) -> None:
    """Copy each table into a new one made with (or without) AUTOINCREMENT; ids are kept."""
    if context.get_context().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass


def upgrade() -> None:
    _rebuild(autoincrement=True)


def downgrade() -> None:
    _rebuild(autoincrement=False)
