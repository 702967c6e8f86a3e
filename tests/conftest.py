"""Shared fixtures: the real PostgreSQL and Redis on this machine (override with TEST_DATABASE_URL,
TEST_REDIS_URL), and a fresh schema or Redis database per test."""
from __future__ import annotations

import os
import shutil
import tempfile

import pytest

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
# One folder of exported encoders for the whole run, inherited by every worker a test starts: files
# are keyed by the encoder's weights, so each encoder is exported once, not at every worker start.
ENCODER_CACHE_DIR = os.environ.setdefault("ENCODER_CACHE_DIR", tempfile.mkdtemp(prefix="test-encoders-"))


def pytest_sessionfinish(session, exitstatus) -> None:
    if ENCODER_CACHE_DIR.startswith(os.path.join(tempfile.gettempdir(), "test-encoders-")):
        shutil.rmtree(ENCODER_CACHE_DIR, ignore_errors=True)


@pytest.fixture
def redis_url() -> str:
    """A Redis database emptied before the test."""
    import redis

    client = redis.Redis.from_url(TEST_REDIS_URL)
    client.flushdb()
    yield TEST_REDIS_URL
    client.flushdb()


@pytest.fixture
def redis_client(redis_url):
    import redis

    return redis.Redis.from_url(redis_url)


def _schema_url(base_url: str, schema: str) -> str:
    """`base_url` with every connection's search_path set to `schema` (libpq's `options`)."""
    from sqlalchemy.engine import make_url

    return make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )


@pytest.fixture
def pg_url() -> str:
    """A URL to an empty PostgreSQL schema of its own, dropped after the test.

    A schema is much faster to make than a database; the URL's search_path points every
    connection (Alembic's and other processes' too) at it.
    """
    import uuid

    from sqlalchemy import create_engine, text

    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(TEST_DATABASE_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _schema_url(TEST_DATABASE_URL, schema)
    finally:
        with admin.connect() as connection:
            # A connection left open inside a transaction must not hang the whole run.
            connection.execute(text("SET lock_timeout = '10s'"))
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    """A URL to a fresh SQLite file, as one-machine mode uses."""
    return f"sqlite:///{tmp_path / 'captionbot.db'}"


@pytest.fixture
def db_engine(pg_url):
    """An Engine on a fresh PostgreSQL schema holding the current tables, stamped as migrated to
    the newest revision (which they are), so commands that migrate first find nothing to do."""
    from alembic import command

    from store.db import alembic_config, make_engine
    from store.models import Base

    engine = make_engine(pg_url)
    Base.metadata.create_all(engine)
    command.stamp(alembic_config(pg_url), "head")
    yield engine
    engine.dispose()


@pytest.fixture
def session_factory(db_engine):
    """A sessionmaker on a fresh PostgreSQL schema with the tables; use with store.db.session_scope."""
    from store.db import make_session_factory

    return make_session_factory(db_engine)


@pytest.fixture(scope="session")
def service_model_bundle(tmp_path_factory):
    """A tiny untrained model bundle for service tests (bot, worker, benchmarks): any model will do."""
    from service_stack import random_bundle

    return random_bundle(tmp_path_factory.mktemp("random-bundle"))


@pytest.fixture(scope="session")
def shared_squares(tmp_path_factory):
    """The coloured-squares Flickr8k and a base model trained on it once for the whole run (about 20 s)."""
    from retrain_fixtures import train_squares

    return train_squares(tmp_path_factory.mktemp("squares"))


@pytest.fixture(scope="session")
def serving(tmp_path_factory, service_model_bundle):
    """The sandbox, the real bot and one caption worker, for every module that needs no settings of
    its own (tests/bot, the browser test): starting one costs 10-20 s. Each test uses users of its own."""
    from service_stack import serving_stack

    with serving_stack(tmp_path_factory.mktemp("service"), service_model_bundle) as stack:
        yield stack
