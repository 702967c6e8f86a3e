"""`captionbot up` on a bare machine: SQLite, embedded Redis, migrations, caption worker, trainer and
bot as child processes, the sandbox when there is no token; Ctrl-C stops every one of them, and a
caption worker killed mid-job comes back and answers the photo it was working on."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
from flaky_proxy import FlakyProxy
from service_stack import REPO_ROOT, SANDBOX_TOKEN, free_port, jpeg_bytes, wait_until

from sandbox.client import SandboxClient
from sandbox.server import SandboxServer

USER = 42
LISTENING = re.compile(r"worker (\S+) listening on captions")
READY = re.compile(r"^ready: chat with the bot in the sandbox at (\S+)/$", re.MULTILINE)


@contextmanager
def captionbot_up(tmp_path: Path, model_dir: Path, **env_values: str) -> Iterator[subprocess.Popen]:
    """`captionbot up` with its own data dir and output in tmp_path/up.log; killed if still running."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("TELEGRAM_TOKEN", "TELEGRAM_API_URL", "REDIS_URL", "DATABASE_URL")}
    env.update(DATA_DIR=str(tmp_path / "data"), MODEL_DIR=str(model_dir), SANDBOX_PORT=str(free_port()),
               TF_CPP_MIN_LOG_LEVEL="3", **env_values)
    with open(tmp_path / "up.log", "wb") as log:
        # Its own process group, as a terminal gives it: Ctrl-C reaches the whole group.
        up = subprocess.Popen([sys.executable, "-m", "captionbot.cli", "up"], cwd=REPO_ROOT, env=env,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield up
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()


def child_with(up: subprocess.Popen, *words: str) -> psutil.Process:
    """The one child of `up` whose command line holds all the words."""
    [child] = [c for c in psutil.Process(up.pid).children() if set(words) <= set(c.cmdline())]
    return child


def answered(client: SandboxClient, sent: dict, timeout: float) -> dict:
    return client.wait_for_message(
        USER, lambda m: (m.get("reply_to_message") or {}).get("message_id") == sent["message_id"], timeout=timeout)


def _with_two_workers(children: list[psutil.Process]) -> list[psutil.Process] | None:
    """The children, once two of them are workers (the caption worker and the trainer)."""
    workers = [child for child in children if "worker" in _command_line(child)]
    return children if len(workers) == 2 else None


def _running(pid: int) -> bool:
    """Alive and not a zombie: the embedded Redis is daemonised, so whoever reaps it may be slow."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _command_line(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.NoSuchProcess:
        return []


def three_free_ports() -> int:
    """A port P with P, P+1 and P+2 free (for METRICS_PORT under `up`)."""
    for _ in range(50):
        base = free_port()
        probes = [socket.socket() for _ in range(3)]
        try:
            for offset, probe in enumerate(probes):
                probe.bind(("127.0.0.1", base + offset))
            return base
        except OSError:
            continue
        finally:
            for probe in probes:
                probe.close()
    raise RuntimeError("no three free ports in a row")


def healthz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return response.status
    except OSError:
        return 0


def test_up_serves_a_photo_through_the_sandbox_and_ctrl_c_stops_everything(tmp_path, service_model_bundle):
    data_dir = tmp_path / "data"
    metrics_port = three_free_ports()
    with captionbot_up(tmp_path, service_model_bundle, METRICS_PORT=str(metrics_port)) as up:
        log_path = tmp_path / "up.log"
        ready = wait_until(lambda: READY.search(log_path.read_text()), timeout=120, what="the ready line")
        # The bot on METRICS_PORT, the caption worker and the trainer on the next two.
        for port, child in zip(range(metrics_port, metrics_port + 3), ("bot", "captions", "training")):
            wait_until(lambda: healthz(port) == 200, timeout=60, what=f"/healthz of the {child} child")
            assert child_with(up, "--metrics-port", str(port), child)
        address = ready.group(1)
        listening = re.search(r"worker \S+ listening on captions", log_path.read_text())
        assert listening and listening.start() < ready.start(), "ready only once a caption worker listens"
        children = wait_until(lambda: _with_two_workers(psutil.Process(up.pid).children(recursive=True)),
                              timeout=30, what="the caption worker and the trainer")
        assert "oneDNN" not in log_path.read_text() and "alembic" not in log_path.read_text(), "no start-up chatter without -v"
        registry = json.loads((data_dir / "redis.rdb.settings").read_text())
        redis_pid = int(Path(registry["pidfile"]).read_text())
        assert (data_dir / "captionbot.db").exists(), "migrations made the SQLite file"

        with SandboxClient(address) as client:
            reply = answered(client, client.send_photo(USER, jpeg_bytes(seed=31)), timeout=120)
        assert [b["text"] for b in reply["reply_markup"]["inline_keyboard"][0]] == ["👍", "👎", "✏️", "🔍"]

        started = time.monotonic()
        os.killpg(up.pid, signal.SIGINT)
        assert up.wait(timeout=60) == 0
        assert time.monotonic() - started < 30
        wait_until(lambda: not any(child.is_running() and child.status() != psutil.STATUS_ZOMBIE for child in children),
                   timeout=10, what="every child to exit")
        wait_until(lambda: not _running(redis_pid), timeout=30, what="the embedded Redis to stop")


def test_a_caption_worker_killed_mid_job_comes_back_and_answers_its_photo_while_the_bot_runs_on(
    tmp_path, service_model_bundle
):
    # The children reach the sandbox through a proxy that holds the worker's first getFile: the kill
    # lands mid-job. Heartbeats and upkeep keep their defaults: recovery is measured as shipped.
    sandbox = SandboxServer(token=SANDBOX_TOKEN).start()
    proxy = FlakyProxy(sandbox.url).start()
    proxy.hold("/getFile", seconds=12.0)
    log_path = tmp_path / "up.log"
    try:
        with captionbot_up(tmp_path, service_model_bundle, TELEGRAM_TOKEN=SANDBOX_TOKEN,
                           TELEGRAM_API_URL=proxy.url) as up, SandboxClient(sandbox.url) as client:
            wait_until(lambda: LISTENING.search(log_path.read_text()), timeout=120, what="the caption worker")
            bot = child_with(up, "bot")
            in_flight = client.send_photo(USER, jpeg_bytes(seed=41))
            wait_until(lambda: any("/getFile" in hit for hit in proxy.hits), timeout=60, what="the job to start")

            worker = child_with(up, "worker", "captions")
            worker.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            wait_until(lambda: len(LISTENING.findall(log_path.read_text())) == 2, timeout=120,
                       what="the caption worker to come back", interval=0.2)
            back = time.monotonic()
            reply = answered(client, in_flight, timeout=120)
            in_flight_answered = time.monotonic()
            later = [answered(client, client.send_photo(USER, jpeg_bytes(seed=seed)), timeout=60) for seed in (42, 43)]

            assert reply["reply_markup"]["inline_keyboard"], "the caption, not an apology"
            assert all(message["reply_markup"]["inline_keyboard"] for message in later)
            assert "caption worker exited with status -9 (SIGKILL); restarting it in 1.0 s" in log_path.read_text()
            first_name, second_name = LISTENING.findall(log_path.read_text())
            assert first_name != second_name, "a new RQ name: the dead one's record cannot block it"
            assert child_with(up, "worker", "captions").pid != worker.pid
            assert child_with(up, "bot").pid == bot.pid and up.poll() is None, "the bot never stopped"
            # The job is abandoned 3 heartbeats (15 s) after its last beat; the restarted worker must
            # retry it within a beat or two of that, not at RQ's next upkeep (up to a minute later).
            abandoned = max(back, killed + 15.0)
            assert in_flight_answered - abandoned < 12.0
            print(f"\nworker back (listening) {back - killed:.1f} s after SIGKILL; "
                  f"in-flight photo answered {in_flight_answered - killed:.1f} s after SIGKILL")

            os.killpg(up.pid, signal.SIGINT)
            assert up.wait(timeout=60) == 0
    finally:
        proxy.stop()
        sandbox.stop()
