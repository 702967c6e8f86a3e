"""Initial schema: users, caption requests, captions, ratings, corrections, model versions.

Revision ID: 0001
Revises:
Create Date: 2026-11-22 03:33:44.404286+00:00
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def _timestamp(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _status(name: str, *values: str) -> sa.Enum:
    # A VARCHAR with a CHECK constraint (named by the metadata's convention), not a PostgreSQL type.
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=16)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("telegram_id", sa.BigInteger(), autoincrement=False, nullable=False),
        _timestamp("first_seen_at"),
        sa.PrimaryKeyConstraint("telegram_id", name=op.f("pk_users")),
    )

    op.create_table(
        "caption_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("file_id", sa.String(length=512), nullable=False),
        sa.Column("file_unique_id", sa.String(length=128), nullable=False),
        sa.Column("file_size", sa.BigInteger(), nullable=True),
        sa.Column("media_path", sa.String(length=1024), nullable=True),
        sa.Column("media_sha256", sa.String(length=64), nullable=True),
        sa.Column(
            "status", _status("request_status", "queued", "running", "done", "failed"), nullable=False
        ),
        sa.Column("error_reason", sa.Text(), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        _timestamp("finished_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.telegram_id"],
            name=op.f("fk_caption_requests_user_id_users"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_caption_requests")),
    )
    op.create_index(op.f("ix_caption_requests_media_sha256"), "caption_requests", ["media_sha256"])
    op.create_index(
        "ix_caption_requests_status_created_at", "caption_requests", ["status", "created_at"]
    )
    op.create_index(
        "ix_caption_requests_user_id_created_at", "caption_requests", ["user_id", "created_at"]
    )

    op.create_table(
        "captions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("beam", sa.Integer(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("reply_message_id", sa.BigInteger(), nullable=True),
        _timestamp("created_at"),
        sa.ForeignKeyConstraint(
            ["request_id"], ["caption_requests.id"],
            name=op.f("fk_captions_request_id_caption_requests"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_captions")),
        sa.UniqueConstraint("request_id", name=op.f("uq_captions_request_id")),
    )
    op.create_index(op.f("ix_captions_created_at"), "captions", ["created_at"])
    op.create_index(op.f("ix_captions_model_version"), "captions", ["model_version"])

    op.create_table(
        "ratings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("caption_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.String(length=8), nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.CheckConstraint("value IN ('up', 'down')", name=op.f("ck_ratings_value")),
        sa.ForeignKeyConstraint(
            ["caption_id"], ["captions.id"],
            name=op.f("fk_ratings_caption_id_captions"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.telegram_id"],
            name=op.f("fk_ratings_user_id_users"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ratings")),
        sa.UniqueConstraint("caption_id", "user_id", name=op.f("uq_ratings_caption_id_user_id")),
    )
    op.create_index(op.f("ix_ratings_user_id"), "ratings", ["user_id"])

    op.create_table(
        "corrections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("caption_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        _timestamp("created_at"),
        sa.ForeignKeyConstraint(
            ["caption_id"], ["captions.id"],
            name=op.f("fk_corrections_caption_id_captions"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.telegram_id"],
            name=op.f("fk_corrections_user_id_users"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_corrections")),
    )
    op.create_index(op.f("ix_corrections_caption_id"), "corrections", ["caption_id"])
    op.create_index(op.f("ix_corrections_user_id"), "corrections", ["user_id"])

    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("encoder", sa.String(length=64), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("data_counts", sa.JSON(), nullable=False),
        sa.Column("parent_version", sa.String(length=64), nullable=True),
        sa.Column(
            "status", _status("model_status", "candidate", "active", "retired", "failed"), nullable=False
        ),
        _timestamp("created_at"),
        _timestamp("activated_at", nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_versions")),
        sa.UniqueConstraint("version", name=op.f("uq_model_versions_version")),
    )
    op.create_index(
        "ix_model_versions_status_activated_at", "model_versions", ["status", "activated_at"]
    )


def downgrade() -> None:
    # Children first; dropping a table drops its indexes.
    for table in ("model_versions", "corrections", "ratings", "captions", "caption_requests", "users"):
        op.drop_table(table)
