"""users.training_excluded_at: an admin's /exclude keeps a user's feedback out of training.

A column on `users` rather than a table of its own, so /forget (which deletes the user row)
leaves nothing behind, exclusion included. SQLite rebuilds the table so its schema reads as the
models create it; PostgreSQL adds the column in place.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-10 09:00:00+00:00
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import context, op

revision: str = "0003"
down_revision: Union[str, Sequence[str], None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def _recreate() -> str:
    return "always" if context.get_context().dialect.name == "sqlite" else "auto"


def upgrade() -> None:
    with op.batch_alter_table("users", recreate=_recreate()) as batch:
        batch.add_column(sa.Column("training_excluded_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users", recreate=_recreate()) as batch:
        batch.drop_column("training_excluded_at")
