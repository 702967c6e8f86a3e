"""Load and faults: many users sending photos while a worker, Redis and PostgreSQL are knocked over.

    python benchmarks/load_faults.py                          # 100 users x 10 photos, 2 workers
    python benchmarks/load_faults.py --users 5 --photos 2 --rate 1   # a quick check

The service runs as production does (benchmarks/load_stack.py): PostgreSQL and a redis-server with
its append-only file, both of the benchmark's own, the bot and caption workers kept running by
captionbot's supervisor, the sandbox Bot API. Users (benchmarks/load_users.py) send real Flickr8k
val photos; while they do, at even intervals, the benchmark
  - SIGKILLs a caption worker that has a job in hand (the supervisor starts it again),
  - restarts Redis (SIGTERM, `--down-s` seconds down, started again on the same data),
  - restarts PostgreSQL (`pg_ctl stop -m fast`, `--down-s` seconds down, started again).
Users told to try again send the photo again after `--retry-after-s`. It reports photos sent,
captions delivered, users told to retry and whether their retry worked, lost photos (neither a
caption nor a message), duplicates (two captions for one photo), latency from photo to caption,
and for each fault the time until a photo sent after it was captioned. Requirements: nothing lost,
nothing duplicated, no "something went wrong", every recovery within 30 s. Writes
benchmarks/results/load_faults.json (or --output) and exits 1 if a requirement failed.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from load_stack import LoadStack  # noqa: E402
from load_users import Tally, Users, tally  # noqa: E402

from service.settings import get_settings  # noqa: E402
from sandbox.client import SandboxClient  # noqa: E402

RESULTS = REPO_ROOT / "benchmarks" / "results" / "load_faults.json"
FAULTS = ("worker", "redis", "postgres")
MAX_RECOVERY_S = 30.0
SETTLE_TIMEOUT_S = 120.0


def val_photos(flickr8k_dir: Path, count: int) -> list[Path]:
    names = (flickr8k_dir / "splits" / "Flickr_8k.devImages.txt").read_text().split()
    if len(names) < count:
        raise SystemExit(f"asked for {count} photos; the val split has {len(names)}")
    return [flickr8k_dir / "images" / name for name in names[:count]]


def cpu_model() -> str:
    for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


class FaultRunner(threading.Thread):
    """Each fault once its share of photos was sent: after 1/(n+1), 2/(n+1)… of them."""

    def __init__(self, stack: LoadStack, users: Users, faults: list[str], total: int, down_s: float) -> None:
        super().__init__(name="faults", daemon=True)
        self.stack, self.users, self.faults, self.total, self.down_s = stack, users, faults, total, down_s
        self.records: list[dict] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        for number, fault in enumerate(self.faults, start=1):
            threshold = self.total * number / (len(self.faults) + 1)
            while self.users.first_sends < threshold and not self.users.done():
                time.sleep(0.05)
            if self.users.done():
                self.records.append({"fault": fault, "skipped": "every photo was answered before it"})
                continue
            started = time.time()
            try:
                self.records.append(getattr(self, f"_{fault}")())
            except Exception as error:  # the run goes on; the report shows it and fails
                self.records.append({"fault": fault, "started_at": started, "error": repr(error)})
                self.error = error
            print(f"fault: {self.records[-1]}", flush=True)

    def _worker(self) -> dict:
        name, job_id = self.stack.busy_worker()
        started = time.time()
        self.stack.kill_worker(name)
        self.stack.wait_for_worker(name)
        return {"fault": "worker", "what": f"SIGKILL {name}" + (f" while it ran {job_id}" if job_id else ""),
                "started_at": started, "back_after_s": round(time.time() - started, 1), "job_id": job_id}

    def _redis(self) -> dict:
        started = time.time()
        self.stack.restart_redis(self.down_s)
        return {"fault": "redis", "what": f"redis-server stopped (SIGTERM) and started after {self.down_s:g} s",
                "started_at": started, "back_after_s": round(time.time() - started, 1)}

    def _postgres(self) -> dict:
        started = time.time()
        self.stack.restart_postgres(self.down_s)
        return {"fault": "postgres", "what": f"pg_ctl stop -m fast, started after {self.down_s:g} s",
                "started_at": started, "back_after_s": round(time.time() - started, 1)}


def settle(stack: LoadStack) -> None:
    """Until no caption job is queued, running or waiting to retry (a late second reply would come
    from one of them), then a few seconds for the last replies."""
    from rq import Queue

    from service.runtime import JOB_SERIALIZER, redis_from_url

    connection = redis_from_url(stack.redis.url)
    queue = Queue("captions", connection=connection, serializer=JOB_SERIALIZER)
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while time.monotonic() < deadline:
        pending = len(queue) + queue.started_job_registry.count + queue.scheduled_job_registry.count
        if pending == 0:
            break
        time.sleep(0.5)
    connection.close()
    time.sleep(3)


def recovery(records: list[dict], result: Tally, killed_job_photos: dict[str, float | None]) -> None:
    """Fault start → the first caption of a photo sent after it (the service serving new photos)."""
    for record in records:
        if "started_at" not in record:
            continue
        start = record["started_at"]
        later = [caption for sent, caption in result.captions if sent >= start]
        first_any = [caption for _, caption in result.captions if caption >= start]
        record["recovered_after_s"] = round(min(later) - start, 2) if later else None
        record["next_caption_after_s"] = round(min(first_any) - start, 2) if first_any else None
        if record.get("job_id"):
            answered = killed_job_photos.get(record["job_id"])
            record["killed_job_answered_after_s"] = round(answered - start, 2) if answered else None


def killed_job_answers(stack: LoadStack, client: SandboxClient, records: list[dict]) -> dict[str, float | None]:
    """When the photo a killed worker had in hand got its caption (sandbox clock)."""
    from sqlalchemy import create_engine, select

    from load_users import is_caption
    from store.models import CaptionRequest

    engine = create_engine(stack.postgres.url)
    answers: dict[str, float | None] = {}
    with engine.connect() as connection:
        for record in records:
            job_id = record.get("job_id")
            if not job_id:
                continue
            row = connection.execute(select(CaptionRequest.chat_id, CaptionRequest.message_id)
                                     .where(CaptionRequest.id == int(job_id.rsplit("-", 1)[1]))).first()
            replies = [m["sandbox"]["sent_at"] for m in client.messages(row.chat_id) if is_caption(m)
                       and (m.get("reply_to_message") or {}).get("message_id") == row.message_id] if row else []
            answers[job_id] = min(replies) if replies else None
    engine.dispose()
    return answers


def requirements(summary: dict, records: list[dict]) -> dict[str, bool]:
    recoveries = [r.get("recovered_after_s") for r in records if "started_at" in r]
    return {
        "nothing_lost": summary["lost"] == 0,
        "no_duplicates": summary["duplicates"] == 0,
        "no_unexpected_errors": summary["unexpected_error_messages"] == 0,
        "every_photo_captioned_or_answered": summary["captions_delivered"] + summary["users_told_to_retry"]
        >= summary["photos_sent"],
        f"recovery_within_{MAX_RECOVERY_S:g}_s": all(r is not None and r <= MAX_RECOVERY_S for r in recoveries),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--photos", type=int, default=10, help="photos per user")
    parser.add_argument("--workers", type=int, default=2, help="caption workers")
    parser.add_argument("--rate", type=float, default=1.5, help="photos per second offered, all users together")
    parser.add_argument("--faults", default=",".join(FAULTS), help=f"comma-separated, in order, from {FAULTS}")
    parser.add_argument("--down-s", type=float, default=5.0, help="how long Redis and PostgreSQL stay down")
    parser.add_argument("--retry-after-s", type=float, default=10.0, help="a user told to try again waits this long")
    parser.add_argument("--max-retries", type=int, default=3, help="tries after the first, per photo")
    parser.add_argument("--timeout-s", type=float, default=1800.0, help="give up on the users after this long")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    faults = [fault for fault in args.faults.split(",") if fault]
    if any(fault not in FAULTS for fault in faults):
        parser.error(f"--faults: choose from {FAULTS}")

    settings = get_settings()
    total = args.users * args.photos
    photos = val_photos(settings.flickr8k_dir, total)
    (REPO_ROOT / "var").mkdir(exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="load-faults-", dir=REPO_ROOT / "var"))
    run_dir.chmod(0o755)  # PostgreSQL's own user must reach its data folder inside
    print(f"logs and data in {run_dir}", flush=True)
    # Photos per user per minute: well above what a user sends here, so no refusal is mistaken
    # for a fault's "try again".
    stack = LoadStack(run_dir, settings.model_dir, args.workers, {"RATE_LIMIT_PER_MINUTE": "1000"})
    started = time.monotonic()
    try:
        stack.start()
        print(f"service up in {time.monotonic() - started:.0f} s", flush=True)
        client = SandboxClient(stack.sandbox_url, timeout=30)
        users = Users(client, photos, args.users, args.photos, args.rate, args.retry_after_s, args.max_retries)
        fault_runner = FaultRunner(stack, users, faults, total, args.down_s)
        fault_runner.start()
        run_started = time.monotonic()
        deadline = run_started + args.timeout_s
        while not users.done() and time.monotonic() < deadline:
            users.step()
            time.sleep(0.05)
        run_s = time.monotonic() - run_started
        fault_runner.join(timeout=SETTLE_TIMEOUT_S)
        settle(stack)
        result = tally(client, users)
        recovery(fault_runner.records, result, killed_job_answers(stack, client, fault_runner.records))
        restarts = {name: count - 1 for name, count in stack.supervisor.starts.items()}
        client.close()
    finally:
        stack.stop()

    summary = result.summary()
    checks = requirements(summary, fault_runner.records)
    model_config = json.loads((settings.model_dir / "config.json").read_text())
    report = {
        "command": "python benchmarks/load_faults.py" + (" " + " ".join(argv or sys.argv[1:])).rstrip(),
        "users": args.users, "photos_per_user": args.photos, "workers": args.workers,
        "offered_photos_per_second": args.rate, "down_s": args.down_s, "retry_after_s": args.retry_after_s,
        "model_version": model_config.get("version", "?"),
        **summary,
        "users_done": users.done(),
        "run_s": round(run_s, 1),
        "photos_per_second": round(summary["photos_sent"] / run_s, 2),
        "faults": [{k: v for k, v in record.items() if k != "started_at"} for record in fault_runner.records],
        "process_restarts": restarts,
        "requirements": checks,
        "passed": all(checks.values()) and users.done() and fault_runner.error is None,
        "machine": {"cpu": cpu_model(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "logs": str(run_dir),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
