"""The service for worker tests: the bot running, the workers' Bot API calls through a proxy that
can fail or stall them (`stack.proxy`)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flaky_proxy import FlakyProxy
from service_stack import ServiceStack, service_stack


@contextmanager
def proxied_stack(workdir: Path, model_dir: Path) -> Iterator[ServiceStack]:
    with service_stack(workdir, model_dir) as stack:
        proxy = FlakyProxy(stack.sandbox.url).start()
        stack.proxy = proxy
        stack.start_bot()
        yield stack
        proxy.stop()
