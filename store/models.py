"""The tables that keep every request, caption and piece of feedback, and the model versions.

A user's id is their Telegram user id, so `user_id` means the same number everywhere: in the bot,
in callback handlers and in these tables. Deleting a user cascades to their requests, captions,
ratings and corrections (the database does it, `ON DELETE CASCADE`), which is what /forget needs.
Timestamps are timezone-aware UTC on PostgreSQL and SQLite alike.
"""
from __future__ import annotations

import enum
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Named constraints let Alembic alter them later, SQLite batch mode included.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

RATING_VALUES = ("up", "down")
# Request ids name jobs (`caption-request-<id>`) and caption ids travel in button data, so an id
# must never come back after /forget: SQLite reuses the highest deleted rowid without AUTOINCREMENT
# (PostgreSQL sequences never go back). Migration 0002 rebuilds the SQLite tables with it.
NEVER_REUSED_IDS = {"sqlite_autoincrement": True}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, even on SQLite, which keeps none."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC")
        value = value.astimezone(timezone.utc)
        # SQLite stores text: keep it naive UTC so that ordering by the column is right.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class RequestStatus(str, enum.Enum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"


class ModelStatus(str, enum.Enum):
    candidate = "candidate"
    active = "active"
    retired = "retired"
    failed = "failed"


def _enum_column(enum_class: type[enum.Enum], name: str) -> Enum:
    """A portable enum: a VARCHAR with a CHECK constraint, no PostgreSQL type to migrate."""
    return Enum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class User(Base):
    """Someone who wrote to the bot; kept so that their data can be found and forgotten."""

    __tablename__ = "users"

    telegram_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set by an admin's /exclude: the user's feedback stays stored but is not trained on.
    training_excluded_at: Mapped[datetime | None] = mapped_column()

    requests: Mapped[list[CaptionRequest]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )


class CaptionRequest(Base):
    """One photo a user sent, from arrival (queued) to a caption (done) or a reason (failed)."""

    __tablename__ = "caption_requests"
    __table_args__ = (
        Index("ix_caption_requests_user_id_created_at", "user_id", "created_at"),
        Index("ix_caption_requests_status_created_at", "status", "created_at"),
        NEVER_REUSED_IDS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.telegram_id", ondelete="CASCADE"), nullable=False
    )
    chat_id: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[int] = mapped_column(BigInteger)
    file_id: Mapped[str] = mapped_column(String(512))
    file_unique_id: Mapped[str] = mapped_column(String(128))
    file_size: Mapped[int | None] = mapped_column(BigInteger)
    # Content-addressed: the same photo sent twice shares one file, hence the sha256 index.
    media_path: Mapped[str | None] = mapped_column(String(1024))
    media_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    status: Mapped[RequestStatus] = mapped_column(
        _enum_column(RequestStatus, "request_status"), default=RequestStatus.queued
    )
    error_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()

    user: Mapped[User] = relationship(back_populates="requests")
    caption: Mapped[Caption | None] = relationship(
        back_populates="request", cascade="all, delete-orphan", passive_deletes=True
    )


class Caption(Base):
    """What the model said about a request's photo, and which model said it how fast."""

    __tablename__ = "captions"
    __table_args__ = (NEVER_REUSED_IDS,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # One caption per request: a retried job finds the caption already there.
    request_id: Mapped[int] = mapped_column(
        ForeignKey("caption_requests.id", ondelete="CASCADE"), unique=True, nullable=False
    )
    text: Mapped[str] = mapped_column(Text)
    model_version: Mapped[str] = mapped_column(String(64), index=True)
    beam: Mapped[int] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Float)
    reply_message_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    request: Mapped[CaptionRequest] = relationship(back_populates="caption")
    ratings: Mapped[list[Rating]] = relationship(
        back_populates="caption", cascade="all, delete-orphan", passive_deletes=True
    )
    corrections: Mapped[list[Correction]] = relationship(
        back_populates="caption", cascade="all, delete-orphan", passive_deletes=True
    )


class Rating(Base):
    """A 👍 or 👎; one per user and caption, changed in place when the user changes their mind."""

    __tablename__ = "ratings"
    __table_args__ = (
        UniqueConstraint("caption_id", "user_id"),
        CheckConstraint("value IN ('up', 'down')", name="value"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    caption_id: Mapped[int] = mapped_column(
        ForeignKey("captions.id", ondelete="CASCADE"), nullable=False
    )
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.telegram_id", ondelete="CASCADE"), nullable=False, index=True
    )
    value: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    caption: Mapped[Caption] = relationship(back_populates="ratings")


class Correction(Base):
    """A better caption a user typed for one of ours: training data for the next model version."""

    __tablename__ = "corrections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    caption_id: Mapped[int] = mapped_column(
        ForeignKey("captions.id", ondelete="CASCADE"), nullable=False, index=True
    )
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.telegram_id", ondelete="CASCADE"), nullable=False, index=True
    )
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    caption: Mapped[Caption] = relationship(back_populates="corrections")


class ModelVersion(Base):
    """A trained model bundle on the models volume, its scores, and whether workers should use it."""

    __tablename__ = "model_versions"
    __table_args__ = (Index("ix_model_versions_status_activated_at", "status", "activated_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(64), unique=True)
    encoder: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(1024))
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    data_counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    parent_version: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[ModelStatus] = mapped_column(
        _enum_column(ModelStatus, "model_status"), default=ModelStatus.candidate
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column()
    notes: Mapped[str | None] = mapped_column(Text)


class CanaryRollout(Base):
    """A version serving a fraction of photos beside the active one, until promoted or ended.

    `running` is true while it runs and NULL after: the unique constraint on it lets at most one
    canary run at a time (NULLs never collide), on PostgreSQL and SQLite alike.
    """

    __tablename__ = "canary_rollouts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(64), index=True)
    baseline_version: Mapped[str] = mapped_column(String(64))  # the active version it is compared with
    fraction: Mapped[float] = mapped_column(Float)
    running: Mapped[bool | None] = mapped_column(Boolean, unique=True, default=True)
    started_by: Mapped[int | None] = mapped_column(BigInteger)  # an admin, or None for a retraining
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column()
    outcome: Mapped[str | None] = mapped_column(String(32))  # promoted, ended, rolled back, superseded
    notes: Mapped[str | None] = mapped_column(Text)
