"""A fresh sandbox Bot API per test and a client for its control API."""
from __future__ import annotations

import pytest

from sandbox import SandboxClient, SandboxServer


@pytest.fixture
def sandbox():
    with SandboxServer() as server:
        yield server


@pytest.fixture
def client(sandbox):
    with SandboxClient(sandbox.url) as sandbox_client:
        yield sandbox_client
