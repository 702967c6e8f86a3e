"""Workers under test sit behind a proxy that can fail or stall their Bot API calls."""
from __future__ import annotations

import itertools

import pytest
from worker_stack import proxied_stack

_user_ids = itertools.count(5001)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, service_model_bundle):
    with proxied_stack(tmp_path_factory.mktemp("service"), service_model_bundle) as stack:
        yield stack


@pytest.fixture
def user_id() -> int:
    return next(_user_ids)
