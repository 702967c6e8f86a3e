"""A PostgreSQL and a redis-server of a benchmark's own, on free ports with data under one folder.

Both can be stopped and started again on the same port and data, as a container restart would:
Redis with the append-only file production uses (docker-compose.yml), so its queues survive;
PostgreSQL from the installed binaries (initdb, pg_ctl), so the machine's own server is never
touched. As root, the PostgreSQL commands run as the `postgres` user (initdb refuses root).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis

REDIS_BINARY = "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def postgres_bin_dir() -> Path:
    """The newest installed PostgreSQL's binaries (/usr/lib/postgresql/<major>/bin on Debian)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda path: int(path.parts[-3]))
    if not found:
        raise SystemExit("no PostgreSQL binaries under /usr/lib/postgresql/*/bin")
    return found[-1].parent


class PersistentRedis:
    """redis-server with `appendonly yes` and `appendfsync everysec`, as docker-compose.yml runs it."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        binary = REDIS_BINARY if Path(REDIS_BINARY).exists() else shutil.which("redis-server")
        log = open(self.data_dir / "redis.log", "ab")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir),
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""],
            stdout=log, stderr=subprocess.STDOUT,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        wait_until(lambda: _answers(client), 30, "redis-server to start")
        client.close()

    def stop(self) -> None:
        """SIGTERM, as `docker restart` sends: Redis writes its append-only file and exits."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


class LocalPostgres:
    """A PostgreSQL cluster in data_dir, listening on 127.0.0.1 and a free port, trust auth."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.bin_dir = postgres_bin_dir()
        self._as_postgres = os.geteuid() == 0

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/captionbot"

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin_dir / tool), *args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, cwd="/")
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")

    def init(self) -> None:
        cluster = self.data_dir / "cluster"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            shutil.chown(self.data_dir, "postgres", "postgres")
        self._run("initdb", "-D", str(cluster), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        self.start()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "captionbot")

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data_dir}"
        self._run("pg_ctl", "-D", str(self.data_dir / "cluster"), "-l", str(self.data_dir / "postgres.log"),
                  "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """`fast` is what a container stop does: open transactions are rolled back, clients cut off."""
        self._run("pg_ctl", "-D", str(self.data_dir / "cluster"), "-m", mode, "-w", "-t", "60", "stop")

    def stop_quietly(self) -> None:
        try:
            self.stop("immediate")
        except RuntimeError:
            pass  # already stopped


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def wait_until(condition, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)
