"""Everything the bot, the workers and the trainer ask of the database, as plain functions.

Each takes a Session first and flushes rather than commits: the caller's `session_scope` decides
when the work is one transaction. `user_id` is always the Telegram user id.
"""
from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from store.models import (
    RATING_VALUES,
    Caption,
    CaptionRequest,
    Correction,
    ModelStatus,
    ModelVersion,
    Rating,
    RequestStatus,
    User,
    utcnow,
)

RatingValue = Literal["up", "down"]


def _insert_for(session: Session):
    """The dialect's INSERT, which knows ON CONFLICT: both PostgreSQL and SQLite have it."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert
    if name == "sqlite":
        return sqlite.insert
    raise NotImplementedError(f"no upsert for the {name} dialect")


def ensure_user(session: Session, telegram_id: int) -> User:
    """The user row, created on first contact; two processes racing here both succeed."""
    insert = _insert_for(session)
    session.execute(
        insert(User)
        .values(telegram_id=telegram_id, first_seen_at=utcnow())
        .on_conflict_do_nothing(index_elements=[User.telegram_id])
    )
    return session.execute(
        select(User).where(User.telegram_id == telegram_id).execution_options(populate_existing=True)
    ).scalar_one()


def create_request(
    session: Session,
    *,
    user_id: int,
    chat_id: int,
    message_id: int,
    file_id: str,
    file_unique_id: str,
    file_size: int | None,
) -> CaptionRequest:
    """A queued request for one photo; the user row is made if this is their first."""
    ensure_user(session, user_id)
    request = CaptionRequest(
        user_id=user_id,
        chat_id=chat_id,
        message_id=message_id,
        file_id=file_id,
        file_unique_id=file_unique_id,
        file_size=file_size,
        status=RequestStatus.queued,
    )
    session.add(request)
    session.flush()
    return request


def standing_request_for_message(session: Session, user_id: int, chat_id: int, message_id: int) -> CaptionRequest | None:
    """The newest request for that sender's message that has not failed (queued, in hand or done),
    with its caption loaded: a second /caption on the photo answers with it instead of a new request."""
    return session.scalars(
        select(CaptionRequest)
        .where(
            CaptionRequest.user_id == user_id,  # indexed; chat and message narrow it to the one photo
            CaptionRequest.chat_id == chat_id,
            CaptionRequest.message_id == message_id,
            CaptionRequest.status != RequestStatus.failed,
        )
        .order_by(CaptionRequest.id.desc())
        .limit(1)
    ).first()


def get_request(session: Session, request_id: int, *, for_update: bool = False) -> CaptionRequest | None:
    """The request, or None if it is gone (/forget).

    `for_update` locks the row until the commit (PostgreSQL; SQLite's writers queue anyway), so a
    /forget running meanwhile waits for this transaction or this one sees the row gone.
    """
    return session.get(CaptionRequest, request_id, with_for_update=for_update, populate_existing=for_update)


def _require_request(session: Session, request_id: int) -> CaptionRequest:
    request = session.get(CaptionRequest, request_id)
    if request is None:
        raise LookupError(f"no caption request {request_id}")
    return request


def photos_to_caption(session: Session, request_ids: list[int]) -> dict[int, str]:
    """request id → file id, for those of `request_ids` still waiting for a caption (not finished,
    none stored yet)."""
    if not request_ids:
        return {}
    rows = session.execute(
        select(CaptionRequest.id, CaptionRequest.file_id)
        .outerjoin(Caption, Caption.request_id == CaptionRequest.id)
        .where(
            CaptionRequest.id.in_(request_ids),
            CaptionRequest.status.in_((RequestStatus.queued, RequestStatus.running)),
            Caption.id.is_(None),
        )
    )
    return {request_id: file_id for request_id, file_id in rows}


def mark_running(session: Session, request_id: int) -> None:
    """In hand: a worker's job, or a batch that stored its caption. Already running writes nothing."""
    request = _require_request(session, request_id)
    if request.status is not RequestStatus.running:
        request.status = RequestStatus.running
        session.flush()


def mark_failed(session: Session, request_id: int, reason: str) -> None:
    request = _require_request(session, request_id)
    request.status = RequestStatus.failed
    request.error_reason = reason
    request.finished_at = utcnow()
    session.flush()


def record_media(session: Session, request_id: int, *, media_path: str, media_sha256: str) -> bool:
    """Note the file that will hold the request's photo, before the worker writes it.

    /forget deletes the files it finds on the user's rows, so a path recorded first is never
    missed. False (write nothing) when the request is gone.
    """
    request = get_request(session, request_id, for_update=True)
    if request is None:
        return False
    request.media_path = media_path
    request.media_sha256 = media_sha256
    session.flush()
    return True


def media_in_use(session: Session, media_path: str) -> bool:
    """Whether any request still refers to this content-addressed file (anyone's)."""
    return session.scalar(
        select(CaptionRequest.id).where(CaptionRequest.media_path == media_path).limit(1)
    ) is not None


def record_caption(
    session: Session,
    request_id: int,
    *,
    text: str,
    model_version: str,
    beam: int,
    latency_ms: float,
) -> Caption | None:
    """Store the caption; the request stays running until `mark_delivered`.

    A retried job gets the caption stored first. None when the request is gone (/forget).
    """
    request = get_request(session, request_id, for_update=True)
    if request is None:
        return None
    caption = request.caption
    if caption is None:
        caption = Caption(
            request=request,
            text=text,
            model_version=model_version,
            beam=beam,
            latency_ms=float(latency_ms),
        )
        session.add(caption)
    session.flush()
    return caption


def mark_delivered(session: Session, request_id: int, reply_message_id: int) -> bool:
    """The reply carrying the caption reached the user: only now is the request done.

    The reply's message id is kept, so a button press can be checked against it. False when
    the request is gone (/forget came while the reply was on its way).
    """
    request = get_request(session, request_id, for_update=True)
    if request is None:
        return False
    if request.caption is None:
        raise LookupError(f"caption request {request_id} has no caption to deliver")
    request.caption.reply_message_id = reply_message_id
    request.status = RequestStatus.done
    request.error_reason = None
    request.finished_at = utcnow()
    session.flush()
    return True


def get_caption(session: Session, caption_id: int) -> Caption | None:
    return session.get(Caption, caption_id)


def set_rating(session: Session, caption_id: int, user_id: int, value: RatingValue) -> Rating:
    """One rating per user and caption: the first call makes it, later calls change its value."""
    if value not in RATING_VALUES:
        raise ValueError(f"rating must be one of {RATING_VALUES}, not {value!r}")
    ensure_user(session, user_id)
    now = utcnow()
    insert = _insert_for(session)
    statement = insert(Rating).values(
        caption_id=caption_id, user_id=user_id, value=value, created_at=now, updated_at=now
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[Rating.caption_id, Rating.user_id],
            set_={"value": statement.excluded.value, "updated_at": statement.excluded.updated_at},
        )
    )
    return session.execute(
        select(Rating)
        .where(Rating.caption_id == caption_id, Rating.user_id == user_id)
        .execution_options(populate_existing=True)
    ).scalar_one()


def add_correction(session: Session, caption_id: int, user_id: int, text: str) -> Correction:
    ensure_user(session, user_id)
    correction = Correction(caption_id=caption_id, user_id=user_id, text=text)
    session.add(correction)
    session.flush()
    return correction


def request_ids_of(session: Session, telegram_id: int) -> list[int]:
    """The ids of a user's requests (their caption jobs are named after them)."""
    return list(session.scalars(select(CaptionRequest.id).where(CaptionRequest.user_id == telegram_id).order_by(CaptionRequest.id)))


def caption_ids_of(session: Session, telegram_id: int) -> list[int]:
    """The ids of a user's captions (Redis keeps their attention maps under them)."""
    return list(session.scalars(
        select(Caption.id).join(CaptionRequest).where(CaptionRequest.user_id == telegram_id).order_by(Caption.id)
    ))


def forget_user(session: Session, telegram_id: int) -> list[str]:
    """Delete a user and, by cascade, their requests, captions, ratings and corrections.

    Returns the media paths that no remaining request refers to, for the caller to delete
    after the commit (the same photo sent by someone else stays).
    """
    # The rows are locked while read: a worker recording a photo's path right now (it holds its
    # request's row) commits first and its path is seen here, so the file cannot be missed.
    locked = session.scalars(
        select(CaptionRequest.media_path).where(CaptionRequest.user_id == telegram_id).with_for_update()
    )
    paths = {path for path in locked if path is not None}
    session.execute(delete(User).where(User.telegram_id == telegram_id))
    # Objects of this user already in the session are gone from the database now.
    session.expire_all()
    if not paths:
        return []
    still_used = set(
        session.scalars(
            select(CaptionRequest.media_path).where(CaptionRequest.media_path.in_(paths)).distinct()
        )
    )
    return sorted(paths - still_used)


def _median_latency_ms(session: Session) -> float | None:
    """The median without loading every row: one or two values read at the middle offset."""
    count = session.scalar(select(func.count(Caption.id))) or 0
    if count == 0:
        return None
    middle = session.scalars(
        select(Caption.latency_ms)
        .order_by(Caption.latency_ms)
        .offset((count - 1) // 2)
        .limit(2 if count % 2 == 0 else 1)
    ).all()
    return float(sum(middle) / len(middle))


def service_stats(session: Session) -> dict[str, Any]:
    """Numbers for the admins' /stats.

    success_rate is done / (done + failed), over finished requests only; up_share is 👍 among all
    ratings. Either is None while there is nothing to divide.
    """
    by_status = dict(
        session.execute(
            select(CaptionRequest.status, func.count(CaptionRequest.id)).group_by(
                CaptionRequest.status
            )
        ).all()
    )
    requests = sum(by_status.values())
    done = by_status.get(RequestStatus.done, 0)
    failed = by_status.get(RequestStatus.failed, 0)
    by_value = dict(
        session.execute(select(Rating.value, func.count(Rating.id)).group_by(Rating.value)).all()
    )
    ratings = sum(by_value.values())
    return {
        "requests": requests,
        "done": done,
        "failed": failed,
        "success_rate": done / (done + failed) if done + failed else None,
        "median_latency_ms": _median_latency_ms(session),
        "up_share": by_value.get("up", 0) / ratings if ratings else None,
    }


def active_model_version(session: Session) -> ModelVersion | None:
    """The version workers should serve: the most recently activated one still active."""
    return session.scalars(
        select(ModelVersion)
        .where(ModelVersion.status == ModelStatus.active)
        .order_by(ModelVersion.activated_at.desc(), ModelVersion.id.desc())
        .limit(1)
    ).first()


def add_model_version(
    session: Session,
    *,
    version: str,
    encoder: str,
    path: str,
    metrics: dict[str, Any] | None = None,
    data_counts: dict[str, Any] | None = None,
    parent_version: str | None = None,
    notes: str | None = None,
    status: ModelStatus = ModelStatus.candidate,
) -> ModelVersion:
    """Record a trained bundle; it serves nobody until activated."""
    model = ModelVersion(
        version=version,
        encoder=encoder,
        path=path,
        metrics=metrics or {},
        data_counts=data_counts or {},
        parent_version=parent_version,
        notes=notes,
        status=status,
    )
    session.add(model)
    session.flush()
    return model


def get_model_version(session: Session, version: str) -> ModelVersion | None:
    return session.scalars(select(ModelVersion).where(ModelVersion.version == version)).first()


def activate_model_version(session: Session, version: str) -> ModelVersion:
    """Make one version the active one; the one active before is retired, so only one serves."""
    model = get_model_version(session, version)
    if model is None:
        raise LookupError(f"no model version {version!r}")
    for previous in session.scalars(
        select(ModelVersion).where(
            ModelVersion.status == ModelStatus.active, ModelVersion.id != model.id
        )
    ):
        previous.status = ModelStatus.retired
    model.status = ModelStatus.active
    model.activated_at = utcnow()
    session.flush()
    return model


def set_model_status(
    session: Session, version: str, status: ModelStatus, notes: str | None = None
) -> ModelVersion:
    """Mark a candidate failed (or retired) with a note saying why."""
    model = get_model_version(session, version)
    if model is None:
        raise LookupError(f"no model version {version!r}")
    model.status = status
    if notes is not None:
        model.notes = notes
    session.flush()
    return model


def list_model_versions(session: Session) -> list[ModelVersion]:
    return list(session.scalars(select(ModelVersion).order_by(ModelVersion.created_at.desc())))
