"""The store's tests run every query on both databases the service supports."""
from __future__ import annotations

import pytest

from store.db import make_engine, make_session_factory
from store.models import Base


@pytest.fixture(params=["postgresql", "sqlite"])
def any_db_url(request) -> str:
    """A fresh, empty database: a PostgreSQL schema of its own, or a new SQLite file."""
    return request.getfixturevalue("pg_url" if request.param == "postgresql" else "sqlite_url")


@pytest.fixture
def any_session_factory(any_db_url):
    """A sessionmaker on a fresh PostgreSQL or SQLite database holding the current tables."""
    engine = make_engine(any_db_url)
    Base.metadata.create_all(engine)
    yield make_session_factory(engine)
    engine.dispose()
