"""The bot's tests talk to the run's shared service unless a module brings its own `stack`."""
from __future__ import annotations

import itertools

import pytest

_user_ids = itertools.count(1001)


@pytest.fixture
def stack(serving):
    """The run's shared service (tests/conftest.py); modules with settings of their own override it."""
    return serving


@pytest.fixture
def user_id() -> int:
    """A user of their own for each test, so that rate limits and data never mix."""
    return next(_user_ids)
