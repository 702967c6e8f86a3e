"""`captionbot up` on a bare machine: SQLite, embedded Redis, migrations, caption worker, trainer and
bot as child processes, the sandbox when there is no token; Ctrl-C stops every one of them."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
from service_stack import REPO_ROOT, free_port, jpeg_bytes, wait_until

from sandbox.client import SandboxClient


def test_up_serves_a_photo_through_the_sandbox_and_ctrl_c_stops_everything(tmp_path, service_model_bundle):
    data_dir = tmp_path / "data"
    env = {key: value for key, value in os.environ.items()
           if key not in ("TELEGRAM_TOKEN", "TELEGRAM_API_URL", "REDIS_URL", "DATABASE_URL")}
    env.update(DATA_DIR=str(data_dir), MODEL_DIR=str(service_model_bundle), SANDBOX_PORT=str(free_port()),
               TF_CPP_MIN_LOG_LEVEL="3")
    log_path = tmp_path / "up.log"
    with open(log_path, "wb") as log:
        # Its own process group, as a terminal gives it: Ctrl-C reaches the whole group.
        up = subprocess.Popen([sys.executable, "-m", "captionbot.cli", "up"], cwd=REPO_ROOT, env=env,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        address = wait_until(lambda: re.search(r"chat with the bot in the sandbox at (\S+)/", log_path.read_text()),
                             timeout=60, what="the chat page address").group(1)
        children = psutil.Process(up.pid).children(recursive=True)
        assert len([c for c in children if "worker" in c.cmdline()]) == 2
        registry = json.loads((data_dir / "redis.rdb.settings").read_text())
        redis_pid = int(Path(registry["pidfile"]).read_text())
        assert (data_dir / "captionbot.db").exists(), "migrations made the SQLite file"

        with SandboxClient(address) as client:
            sent = client.send_photo(42, jpeg_bytes(seed=31))
            reply = client.wait_for_message(
                42, lambda m: (m.get("reply_to_message") or {}).get("message_id") == sent["message_id"], timeout=120)
        assert [b["text"] for b in reply["reply_markup"]["inline_keyboard"][0]] == ["👍", "👎", "✏️"]

        started = time.monotonic()
        os.killpg(up.pid, signal.SIGINT)
        assert up.wait(timeout=60) == 0
        assert time.monotonic() - started < 30
        wait_until(lambda: not any(child.is_running() and child.status() != psutil.STATUS_ZOMBIE for child in children),
                   timeout=10, what="every child to exit")
        wait_until(lambda: not psutil.pid_exists(redis_pid), timeout=15, what="the embedded Redis to stop")
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()
