"""SandboxServer: the sandbox Bot API in a background thread with its own event loop, so that
sync tests, `captionbot up` and `captionbot sandbox` can start it, point the bot at it and stop it."""
from __future__ import annotations

import asyncio
import logging
import threading
from types import TracebackType

from aiohttp import web

from sandbox import botapi, control, webhook
from sandbox.state import STATE, SandboxState

DEFAULT_TOKEN = "123456:sandbox"
log = logging.getLogger(__name__)


def make_app(state: SandboxState) -> web.Application:
    """The aiohttp application: the Bot API, webhook delivery, the control API and the chat page."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[STATE] = state
    botapi.add_routes(app)
    control.add_routes(app)
    webhook.add_routes(app)
    return app


class SandboxServer:
    """A local Bot API stand-in. `port=0` picks a free port; `.url` tells which."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, token: str = DEFAULT_TOKEN,
                 bot_first_name: str = "CaptionBot", bot_username: str = "captionbot_sandbox_bot"):
        self.host = host
        self.port = port
        self.token = token
        self._names = (bot_first_name, bot_username)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._state: SandboxState | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_base(self) -> str:
        """For ApplicationBuilder().base_url(...): the token is appended by python-telegram-bot."""
        return f"{self.url}/bot"

    @property
    def file_base(self) -> str:
        """For ApplicationBuilder().base_file_url(...)."""
        return f"{self.url}/file/bot"

    def start(self) -> SandboxServer:
        """Start serving; returns once the port is bound (raises if it cannot be)."""
        if self._thread is not None:
            raise RuntimeError("the sandbox is already running")
        self._ready.clear()
        self._thread = threading.Thread(target=self._run, name="sandbox-bot-api", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=30)
        if self._error is not None:
            self._thread.join()
            self._thread = None
            raise RuntimeError(f"the sandbox could not start: {self._error}") from self._error
        log.info("sandbox Bot API at %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving; waiting long polls are answered at once."""
        if self._thread is None or self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start()'s caller
            self._error = exc
            self._ready.set()
            self._loop.close()
            return
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        self._state = SandboxState(self.token, *self._names)
        self._runner = web.AppRunner(make_app(self._state), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except BaseException:
            await self._runner.cleanup()  # stops webhook delivery, started by setup()
            raise
        sockets = self._runner.addresses
        if sockets:
            self.port = sockets[0][1]

    async def _shutdown(self) -> None:
        if self._state is not None:
            self._state.close()
        if self._runner is not None:
            await self._runner.cleanup()
