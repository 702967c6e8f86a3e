"""A local stand-in for the Telegram Bot API over HTTP, with a control API for tests and a web
chat page for people (see docs/sandbox.md)."""
from sandbox.client import SandboxClient
from sandbox.server import DEFAULT_TOKEN, SandboxServer

__all__ = ["DEFAULT_TOKEN", "SandboxClient", "SandboxServer"]
