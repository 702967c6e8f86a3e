"""Canary rollouts: a version serving a fraction of photos beside the active one.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-10 09:00:00+00:00
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: Union[str, Sequence[str], None] = "0003"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "canary_rollouts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("baseline_version", sa.String(length=64), nullable=False),
        sa.Column("fraction", sa.Float(), nullable=False),
        sa.Column("running", sa.Boolean(), nullable=True),
        sa.Column("started_by", sa.BigInteger(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canary_rollouts")),
        # At most one running canary: `running` is true or NULL, and NULLs never collide.
        sa.UniqueConstraint("running", name=op.f("uq_canary_rollouts_running")),
    )
    op.create_index(op.f("ix_canary_rollouts_version"), "canary_rollouts", ["version"])


def downgrade() -> None:
    op.drop_table("canary_rollouts")
