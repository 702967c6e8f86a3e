"""Updates per second through the bot: one long-polling process against two webhook replicas.

    python benchmarks/webhook_throughput.py              # 3 rounds of 200 /help from 20 users
    python benchmarks/webhook_throughput.py --rounds 1

Each mode runs as production does, in processes of their own against the sandbox Bot API: a
redis-server, a SQLite file, `captionbot bot` (polling) or two `captionbot bot --webhook`
(the sandbox delivering to them in turn). /help needs no worker and no model, so this measures
what the bot adds per update: receiving it, the handler, the sendMessage. Writes
benchmarks/results/webhook_throughput.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))

from local_servers import PersistentRedis, free_port, wait_until  # noqa: E402
from sandbox.client import SandboxClient  # noqa: E402
from sandbox.server import SandboxServer  # noqa: E402

SECRET = "benchmark-secret"
USERS, PER_USER = 20, 10
HELP_MARK = "photos a minute"  # in /help's answer


def captionbot(arguments: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "captionbot.cli", *arguments], cwd=REPO_ROOT,
                            env={**os.environ, **env}, stdout=open(log, "ab"), stderr=subprocess.STDOUT)


def listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def start_bots(mode: str, env: dict[str, str], client: SandboxClient, workdir: Path) -> list[subprocess.Popen]:
    """The polling bot, or two webhook replicas the sandbox delivers to in turn; once they serve."""
    if mode == "polling":
        bots = [captionbot(["bot"], env, workdir / "bot.log")]
        wait_until(lambda: client.bot_info()["commands"], 60, "the bot to start")
        return bots
    bots, urls = [], []
    for name in ("a", "b"):
        port = free_port()
        urls.append(f"http://127.0.0.1:{port}/telegram")
        bots.append(captionbot(["bot", "--webhook", urls[-1]], {
            **env, "TELEGRAM_WEBHOOK_SECRET": SECRET, "TELEGRAM_WEBHOOK_LISTEN": "127.0.0.1",
            "TELEGRAM_WEBHOOK_PORT": str(port)}, workdir / f"bot-{name}.log"))
    for url in urls:
        wait_until(lambda: listening(int(url.split(":")[2].split("/")[0])), 60, f"{url} to listen")
    wait_until(lambda: client.webhook()["info"]["url"] in urls, 60, "a replica to set the webhook")
    client.set_webhook_replicas(urls)
    return bots


def one_round(client: SandboxClient, first_user: int) -> float:
    """Seconds from the first /help sent until every one is answered."""
    users = range(first_user, first_user + USERS)
    started = time.monotonic()
    for _ in range(PER_USER):
        for user in users:
            client.send_text(user, "/help")

    def answered() -> bool:
        return all(sum(HELP_MARK in (m.get("text") or "") for m in client.messages(u)) == PER_USER for u in users)

    wait_until(answered, 300, "every /help to be answered", interval=0.02)
    return time.monotonic() - started


def measure(mode: str, rounds: int) -> dict:
    with tempfile.TemporaryDirectory() as folder, SandboxServer() as sandbox:
        workdir = Path(folder)
        redis_server = PersistentRedis(workdir / "redis")
        redis_server.start()
        env = {"TELEGRAM_TOKEN": sandbox.token, "TELEGRAM_API_URL": sandbox.url, "REDIS_URL": redis_server.url,
               "DATA_DIR": str(workdir / "data"), "TEXT_RATE_LIMIT_PER_MINUTE": "1000"}
        subprocess.run([sys.executable, "-m", "captionbot.cli", "migrate"], cwd=REPO_ROOT,
                       env={**os.environ, **env}, check=True, capture_output=True)
        client = SandboxClient(sandbox.url)
        bots = start_bots(mode, env, client, workdir)
        try:
            seconds = [one_round(client, 10_000 * (n + 1)) for n in range(rounds)]
        finally:
            for bot in bots:
                bot.terminate()
                bot.wait(timeout=30)
            redis_server.stop()
        result = {"updates_per_round": USERS * PER_USER, "seconds": [round(s, 3) for s in seconds],
                  "median_updates_per_s": round(USERS * PER_USER / statistics.median(seconds), 1)}
        if mode == "webhook":
            deliveries = client.webhook()["deliveries"]
            result["deliveries"] = len(deliveries)
            result["failed_deliveries"] = [d["error"] for d in deliveries if d["status"] != 200]
        client.close()
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "webhook_throughput.json")
    args = parser.parse_args(argv)
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "polling_one_bot": measure("polling", args.rounds),
        "webhook_two_replicas": measure("webhook", args.rounds),
    }
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
