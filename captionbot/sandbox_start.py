"""Starting the sandbox Bot API for `captionbot up` and `captionbot sandbox`: a busy port is one
line that says which setting to change, not a traceback."""
from __future__ import annotations

import errno

from captionbot.errors import CommandError
from sandbox.server import SandboxServer


def start_sandbox(host: str, port: int, token: str) -> SandboxServer:
    """The sandbox, serving; CommandError if its port is taken (another `captionbot up`, say)."""
    try:
        return SandboxServer(host=host, port=port, token=token).start()
    except RuntimeError as error:
        cause = error.__cause__
        if isinstance(cause, OSError) and cause.errno == errno.EADDRINUSE:
            raise CommandError(
                f"the sandbox's port {port} on {host} is in use (another captionbot up or sandbox?): "
                "set SANDBOX_PORT to a free port, or to 0 to pick one"
            ) from error
        raise
