"""What jobs use, held by the worker process: settings, database, Bot API client, media store, model.

Jobs carry only ids; everything else they need is here. A ModelWorker installs its context at
start; a process without one (a failure callback run elsewhere) builds one from the environment.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from service.settings import Settings, get_settings
from store.db import make_engine, make_session_factory
from worker.bot_api import BotApiClient
from worker.media import MediaStore
from worker.models import CaptionerHolder


@dataclass
class WorkerContext:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    bot_api: BotApiClient
    media: MediaStore
    models: CaptionerHolder

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkerContext:
        if not settings.telegram_token:
            raise ValueError("workers need TELEGRAM_TOKEN (or the sandbox's token) to reply")
        engine = make_engine(settings.resolved_database_url, settings.database_timeouts)
        session_factory = make_session_factory(engine)
        return cls(
            settings=settings,
            engine=engine,
            session_factory=session_factory,
            bot_api=BotApiClient(
                settings.telegram_api_url, settings.telegram_token, settings.http_timeout_s, settings.http_connect_timeout_s
            ),
            media=MediaStore(settings.resolved_media_dir),
            models=CaptionerHolder(settings, session_factory),
        )

    def close(self) -> None:
        self.bot_api.close()
        self.engine.dispose()


_current: WorkerContext | None = None
_lock = threading.Lock()


def install(context: WorkerContext | None) -> None:
    global _current
    with _lock:
        _current = context


def current() -> WorkerContext:
    global _current
    with _lock:
        if _current is None:
            _current = WorkerContext.from_settings(get_settings())
        return _current
