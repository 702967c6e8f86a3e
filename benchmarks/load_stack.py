"""The service as production runs it, on one machine, for benchmarks that break parts of it.

A PostgreSQL and a persistent redis-server of its own (benchmarks/local_servers.py), migrated as
`captionbot migrate` does; the sandbox Bot API in its own process; the bot and N caption workers
(`captionbot bot`, `captionbot worker --queue captions`) kept running by captionbot.supervisor, the
restart policy of `captionbot up`, so a killed worker comes back as it would there (or under
docker's `restart: unless-stopped`). Every process logs to a file in the run's folder.
"""
from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from local_servers import LocalPostgres, PersistentRedis, free_port, wait_until

from captionbot.supervisor import RestartPolicy, Supervisor

REPO_ROOT = Path(__file__).resolve().parents[1]
SANDBOX_TOKEN = "123456:sandbox"
START_TIMEOUT_S = 600  # two workers loading TensorFlow on 2 busy cores took 3 minutes


class CountingSupervisor(Supervisor):
    """captionbot's supervisor, counting the starts of each child (a restart is a start after the first)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.starts: dict[str, int] = {child.name: 0 for child in self.children}

    def _start(self, child) -> None:
        super()._start(child)
        self.starts[child.name] += 1


def logged(command: list[str], log_path: Path) -> list[str]:
    """The command with its output appended to a file; `exec` keeps the pid the command's own."""
    return ["sh", "-c", f"exec {shlex.join(command)} >>{shlex.quote(str(log_path))} 2>&1"]


class LoadStack:
    """Start with start(), break parts with kill_worker / restart_redis / restart_postgres, stop()."""

    def __init__(self, run_dir: Path, model_dir: Path, workers: int, extra_env: dict[str, str] | None = None) -> None:
        self.run_dir = run_dir
        self.model_dir = model_dir
        self.worker_names = [f"caption-worker-{index + 1}" for index in range(workers)]
        self.postgres = LocalPostgres(run_dir / "postgres")
        self.redis = PersistentRedis(run_dir / "redis")
        self.sandbox_port = free_port()
        self.sandbox_url = f"http://127.0.0.1:{self.sandbox_port}"
        self.extra_env = extra_env or {}
        self.sandbox: subprocess.Popen | None = None
        self.supervisor: CountingSupervisor | None = None
        self._supervising: threading.Thread | None = None

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "TELEGRAM_TOKEN": SANDBOX_TOKEN,
            "TELEGRAM_API_URL": self.sandbox_url,
            "DATABASE_URL": self.postgres.url,
            "REDIS_URL": self.redis.url,
            "DATA_DIR": str(self.run_dir / "data"),
            "MODEL_DIR": str(self.model_dir),
            "TF_CPP_MIN_LOG_LEVEL": "3",
            **self.extra_env,
        }

    def _cli(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "captionbot.cli", *args]

    def start(self) -> None:
        self.postgres.init()
        self.redis.start()
        env = self.env()
        subprocess.run(self._cli("migrate"), cwd=REPO_ROOT, env=env, check=True, capture_output=True)
        self.sandbox = subprocess.Popen(
            logged(self._cli("sandbox", "--host", "127.0.0.1", "--port", str(self.sandbox_port)),
                   self.run_dir / "sandbox.log"),
            cwd=REPO_ROOT, env=env,
        )
        wait_until(self._sandbox_answers, 60, "the sandbox")
        commands = {"bot": logged(self._cli("bot"), self.run_dir / "bot.log")}
        for name in self.worker_names:
            commands[name] = logged(self._cli("worker", "--queue", "captions", "--name", name),
                                    self.run_dir / f"{name}.log")
        os.chdir(REPO_ROOT)  # the supervisor starts children in its own working directory
        self.supervisor = CountingSupervisor(commands, env, RestartPolicy())
        self._supervising = threading.Thread(target=self.supervisor.run, name="supervisor", daemon=True)
        self._supervising.start()
        wait_until(lambda: set(self.worker_names) <= set(self.live_workers()), START_TIMEOUT_S, "the caption workers", 0.2)

    def _sandbox_answers(self) -> bool:
        try:
            return httpx.get(f"{self.sandbox_url}/sandbox/bot", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def live_workers(self) -> dict[str, float]:
        """Registered workers and when each was born (Unix time)."""
        from rq import Worker

        from service.runtime import redis_from_url

        connection = redis_from_url(self.redis.url)
        try:
            return {worker.name: worker.birth_date.timestamp() if worker.birth_date else 0.0
                    for worker in Worker.all(connection=connection)}
        except Exception:  # Redis restarting: nobody is known to be alive
            return {}
        finally:
            connection.close()

    def busy_worker(self, timeout: float = 10.0) -> tuple[str, str | None]:
        """A worker with a job in hand (its name and job id), or the first worker after `timeout`."""
        from rq import Worker

        from service.runtime import redis_from_url

        connection = redis_from_url(self.redis.url)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                for worker in Worker.all(connection=connection):
                    job_id = worker.get_current_job_id()
                    if worker.name in self.worker_names and job_id:
                        return worker.name, job_id
                time.sleep(0.02)
        finally:
            connection.close()
        return self.worker_names[0], None

    # --- faults ------------------------------------------------------------------------------
    def kill_worker(self, name: str) -> None:
        """SIGKILL, as the OOM killer would; the supervisor notices and starts it again."""
        child = next(child for child in self.supervisor.children if child.name == name)
        os.kill(child.process.pid, signal.SIGKILL)

    def wait_for_worker(self, name: str, timeout: float = START_TIMEOUT_S) -> None:
        wait_until(lambda: name in self.live_workers() and self.supervisor.starts[name] > 1, timeout,
              f"{name} to come back")

    def restart_redis(self, down_s: float) -> None:
        self.redis.stop()
        time.sleep(down_s)
        self.redis.start()

    def restart_postgres(self, down_s: float) -> None:
        self.postgres.stop("fast")
        time.sleep(down_s)
        self.postgres.start()

    def stop(self) -> None:
        if self.supervisor is not None:
            self.supervisor.request_stop()
            self._supervising.join(timeout=60)
        if self.sandbox is not None and self.sandbox.poll() is None:
            self.sandbox.terminate()
            self.sandbox.wait(timeout=20)
        self.redis.stop()
        self.postgres.stop_quietly()

