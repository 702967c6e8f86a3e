"""`captionbot up`'s supervisor with small real child processes: a child that dies is restarted
with a doubling backoff that starts over once it stayed up, a crash loop stops everything and says
which child, and Ctrl-C or SIGTERM stops every child with one SIGTERM (SIGKILL after the grace).

The supervisor runs in a process of its own through `one_machine.supervise`, signal handlers and
all, exactly as `captionbot up` runs it; each child records its starts and the SIGTERMs it gets.
"""
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
import pytest
from service_stack import REPO_ROOT, wait_until

from captionbot.supervisor import RestartPolicy

SUPERVISE = """
import json, logging, os, sys
from captionbot.one_machine import supervise
from captionbot.supervisor import RestartPolicy
logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
commands, policy = json.loads(sys.argv[1]), RestartPolicy(**json.loads(sys.argv[2]))
sys.exit(supervise(commands, dict(os.environ), policy))
"""

# argv: record file, seconds to live on each start (the last one repeats), what to do on SIGTERM.
CHILD = """
import os, signal, sys, time
record, plan, on_term = sys.argv[1], [float(s) for s in sys.argv[2].split(",")], sys.argv[3]
with open(record, "a") as f:
    f.write(f"{os.getpid()} {time.time()}\\n")
def on_sigterm(*_):
    with open(record + ".term", "a") as f:
        f.write(f"{os.getpid()}\\n")
    if on_term == "exit":
        sys.exit(0)
signal.signal(signal.SIGTERM, on_sigterm)
starts = len(open(record).read().splitlines())
time.sleep(plan[min(starts, len(plan)) - 1])
sys.exit(3)
"""
FOREVER = "3600"


class Supervised:
    """A supervisor process over `CHILD`s, with what each child recorded."""

    def __init__(self, tmp_path: Path, plans: dict[str, str], policy: RestartPolicy, ignore_sigterm: str = "") -> None:
        self.tmp_path = tmp_path
        self.names = list(plans)
        self.log_path = tmp_path / "supervisor.log"
        commands = {name: [sys.executable, "-c", CHILD, str(self.record(name)), plan,
                           "ignore" if name == ignore_sigterm else "exit"]
                    for name, plan in plans.items()}
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", SUPERVISE, json.dumps(commands), json.dumps(policy.__dict__)],
                cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            )

    def record(self, name: str) -> Path:
        return self.tmp_path / f"{name}.starts"

    def starts(self, name: str) -> list[tuple[int, float]]:
        """(pid, time) of each start of the child."""
        if not self.record(name).exists():
            return []
        return [(int(pid), float(at)) for pid, at in (line.split() for line in self.record(name).read_text().splitlines())]

    def sigterms(self, name: str) -> list[int]:
        path = Path(f"{self.record(name)}.term")
        return [int(pid) for pid in path.read_text().split()] if path.exists() else []

    def log(self) -> str:
        return self.log_path.read_text()

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        for name in self.names:
            for pid, _ in self.starts(name):
                if psutil.pid_exists(pid):
                    os.kill(pid, signal.SIGKILL)


@pytest.fixture
def supervised(tmp_path):
    made: list[Supervised] = []

    def start(plans: dict[str, str], policy: RestartPolicy, ignore_sigterm: str = "") -> Supervised:
        made.append(Supervised(tmp_path, plans, policy, ignore_sigterm))
        return made[-1]

    yield start
    for each in made:
        each.close()


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_backoff_doubles_from_the_first_delay_up_to_the_cap():
    policy = RestartPolicy(first_delay_s=1.0, max_delay_s=30.0)
    assert [policy.delay(n) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]


def test_a_dying_child_is_restarted_with_doubling_delays_that_start_over_after_it_stayed_up(supervised):
    # Three quick deaths (0.3, 0.6, 1.2 s waits), then a life longer than stable_after_s (back to 0.3 s).
    policy = RestartPolicy(first_delay_s=0.3, max_delay_s=5.0, stable_after_s=1.5, restart_limit=10,
                           restart_window_s=60.0, stop_grace_s=5.0, poll_interval_s=0.05)
    run = supervised({"flaky": f"0,0,0,2.0,{FOREVER}", "steady": FOREVER}, policy)

    wait_until(lambda: len(run.starts("flaky")) == 5, timeout=30, what="the fifth start of the flaky child")
    restarts = re.findall(r"flaky exited with status 3; restarting it in ([\d.]+) s", run.log())
    assert restarts == ["0.3", "0.6", "1.2", "0.3"]
    times = [at for _, at in run.starts("flaky")]
    gaps = [later - earlier for earlier, later in zip(times, times[1:])]
    waits = [0.3, 0.6, 1.2, 2.0 + 0.3]  # the last one: its life, then the first delay again
    assert all(wait <= gap < wait + 2.0 for gap, wait in zip(gaps, waits)), f"starts {gaps} s apart"

    steady = run.starts("steady")
    assert len(steady) == 1 and alive(steady[0][0]), "a sibling's death never touches the others"
    assert run.process.poll() is None
    os.killpg(run.process.pid, signal.SIGTERM)
    assert run.process.wait(timeout=15) == 0


def test_a_crash_loop_stops_everything_and_names_the_child_and_where_to_look(supervised):
    policy = RestartPolicy(first_delay_s=0.1, restart_limit=2, restart_window_s=30.0, stop_grace_s=5.0,
                           poll_interval_s=0.05)
    run = supervised({"broken": "0", "steady": FOREVER}, policy)

    assert run.process.wait(timeout=30) == 1
    assert len(run.starts("broken")) == 3, "two restarts allowed, the third exit ends it"
    assert "broken keeps dying: it exited with status 3, 3 times within 30 s; stopping everything" in run.log()
    assert "Its last log lines above say why; to watch it start alone, run: " in run.log()
    [(steady_pid, _)] = run.starts("steady")
    assert run.sigterms("steady") == [steady_pid]
    assert not alive(steady_pid)


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_stop_request_gives_each_child_one_sigterm_and_kills_one_that_ignores_it(supervised, stop_signal):
    policy = RestartPolicy(stop_grace_s=1.5, poll_interval_s=0.05)
    run = supervised({"polite": FOREVER, "stubborn": FOREVER}, policy, ignore_sigterm="stubborn")
    wait_until(lambda: run.starts("polite") and run.starts("stubborn"), timeout=15, what="both children to start")

    started = time.monotonic()
    os.killpg(run.process.pid, stop_signal)  # the supervisor's group only, as a terminal's Ctrl-C
    assert run.process.wait(timeout=15) == 0
    assert time.monotonic() - started >= 1.5, "the stubborn child had its grace"

    [(polite_pid, _)] = run.starts("polite")
    [(stubborn_pid, _)] = run.starts("stubborn")
    assert run.sigterms("polite") == [polite_pid]
    assert run.sigterms("stubborn") == [stubborn_pid]
    assert not alive(polite_pid) and not alive(stubborn_pid)
    assert "stubborn did not stop in time; killing it" in run.log()
    assert "polite did not stop" not in run.log()
    assert "restarting" not in run.log(), "a stop is not a death to recover from"
