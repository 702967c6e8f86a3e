"""One small HTTP server per process, on METRICS_PORT: `/metrics` (Prometheus), `/healthz` and `/readyz`.

It runs in a daemon thread, so it fits the bot's asyncio loop and a worker's blocking RQ loop
alike, and it answers while the process is still starting: `/healthz` says the process is up,
`/readyz` is 503 until the model has loaded and while Redis or the database does not answer.
Each process has its own registry (prometheus_client's default one) and so its own port.
"""
from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from service.health import Readiness

log = logging.getLogger(__name__)


class HealthServer:
    """Serves until `stop()`; `port` is the one bound (useful when asked for port 0)."""

    def __init__(self, host: str, port: int, readiness: Readiness, registry: CollectorRegistry = REGISTRY) -> None:
        handler = _handler_class(readiness, registry)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self.host = host
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="health-server", daemon=True)

    def start(self) -> HealthServer:
        self._thread.start()
        log.info("metrics and health on http://%s:%s (/metrics, /healthz, /readyz)", self.host, self.port)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def start_health_server(host: str, port: int, readiness: Readiness) -> HealthServer | None:
    """The server on `port`, started; None when port is 0 (metrics and health are off)."""
    if not port:
        return None
    try:
        return HealthServer(host, port, readiness).start()
    except OSError as error:
        raise SystemExit(f"cannot serve metrics and health on {host}:{port} ({error.strerror}); "
                         "set METRICS_PORT to a free port, or 0 to turn them off") from None


def _handler_class(readiness: Readiness, registry: CollectorRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(registry))
            elif path == "/healthz":
                self._send(200, "text/plain; charset=utf-8", b"ok\n")
            elif path == "/readyz":
                report = readiness.report()
                body = json.dumps({"ready": report.ready, "checks": report.checks}).encode()
                self._send(200 if report.ready else 503, "application/json", body)
            else:
                self._send(404, "text/plain; charset=utf-8", b"not found: try /metrics, /healthz or /readyz\n")

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Scrapes and probes every few seconds would drown the process's log."""

    return Handler
