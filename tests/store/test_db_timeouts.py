"""No database call waits forever: PostgreSQL statements and connections time out, and a SQLite
writer waits for another's lock only so long."""
from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from tcp_gate import Blackhole

from store.db import DatabaseTimeouts, make_engine


def test_a_postgres_statement_longer_than_the_statement_timeout_is_cancelled(pg_url):
    engine = make_engine(pg_url, DatabaseTimeouts(connect_s=5, statement_s=1))
    try:
        with engine.connect() as connection:
            schema = make_url(pg_url).query["options"].split("=")[-1]
            assert connection.scalar(text("SHOW search_path")) == schema, "the URL's own options are kept"
            assert connection.scalar(text("SHOW statement_timeout")) == "1s"
            with pytest.raises(OperationalError) as raised:
                connection.execute(text("SELECT pg_sleep(5)"))
        assert isinstance(raised.value.orig, psycopg.errors.QueryCanceled)
    finally:
        engine.dispose()


def test_a_postgres_server_that_never_answers_fails_the_connection_instead_of_hanging(pg_url):
    with Blackhole() as hole:
        url = make_url(pg_url).set(host="127.0.0.1", port=hole.port).render_as_string(hide_password=False)
        engine = make_engine(url, DatabaseTimeouts(connect_s=2, statement_s=1))
        with pytest.raises(OperationalError) as raised:
            engine.connect()
        engine.dispose()
    assert "timeout" in str(raised.value).lower()


def test_a_sqlite_writer_waits_for_the_lock_only_as_long_as_the_statement_timeout(sqlite_url):
    holder = make_engine(sqlite_url)
    waiter = make_engine(sqlite_url, DatabaseTimeouts(statement_s=0.5))
    try:
        with holder.begin() as connection:  # BEGIN IMMEDIATE: holds the write lock
            connection.execute(text("CREATE TABLE t (x INTEGER)"))
            with pytest.raises(OperationalError, match="locked"):
                with waiter.begin() as other:
                    other.execute(text("SELECT 1"))
    finally:
        holder.dispose()
        waiter.dispose()
