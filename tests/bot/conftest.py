"""One service for every bot test module that needs no settings of its own: the sandbox, a
redis-server, a PostgreSQL schema, the bot and a caption worker (starting one costs 10-20 s)."""
from __future__ import annotations

import itertools

import pytest
from service_stack import serving_stack

_user_ids = itertools.count(1001)


@pytest.fixture(scope="session")
def stack(tmp_path_factory, service_model_bundle):
    with serving_stack(tmp_path_factory.mktemp("service"), service_model_bundle) as stack:
        yield stack


@pytest.fixture
def user_id() -> int:
    """A user of their own for each test, so that rate limits and data never mix."""
    return next(_user_ids)
