"""An HTTP proxy in front of the sandbox that can fail or stall chosen Bot API calls, for tests
of what workers do when Telegram is unreachable or slow. Everything else passes through."""
from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

from aiohttp import ClientSession, web

HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}


@dataclass
class Rule:
    path_contains: str
    action: str  # "fail": answer `status` with a Bot API error; "hold": wait `seconds`, then forward
    remaining: int
    seconds: float = 0.0
    status: int = 502


class FlakyProxy:
    def __init__(self, target_url: str) -> None:
        self.target_url = target_url.rstrip("/")
        self.url = ""
        self.hits: list[str] = []
        self._rules: list[Rule] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="flaky-proxy", daemon=True)

    def start(self) -> FlakyProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise TimeoutError("proxy did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def fail(self, path_contains: str, times: int, status: int = 502) -> None:
        """Answer the next `times` matching calls with `status` (a 4xx is Telegram refusing)."""
        with self._lock:
            self._rules.append(Rule(path_contains, "fail", times, status=status))

    def hold(self, path_contains: str, seconds: float, times: int = 1) -> None:
        with self._lock:
            self._rules.append(Rule(path_contains, "hold", times, seconds))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def _take_rule(self, path: str) -> Rule | None:
        with self._lock:
            self.hits.append(path)
            for rule in self._rules:
                if rule.remaining > 0 and rule.path_contains in path:
                    rule.remaining -= 1
                    return rule
        return None

    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start_site())
        self._ready.set()
        self._loop.run_forever()

    async def _start_site(self) -> None:
        self._session = ClientSession()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        app.on_cleanup.append(lambda _: self._session.close())
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        rule = self._take_rule(request.path)
        if rule is not None and rule.action == "fail":
            body = {"ok": False, "error_code": rule.status, "description": f"HTTP {rule.status} (test)"}
            return web.json_response(body, status=rule.status)
        if rule is not None and rule.action == "hold":
            await asyncio.sleep(rule.seconds)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        body = await request.read()
        async with self._session.request(
            request.method, self.target_url + request.path_qs, data=body, headers=headers
        ) as upstream:
            payload = await upstream.read()
            out_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_HEADERS | {"content-encoding"}}
            return web.Response(status=upstream.status, body=payload, headers=out_headers)
