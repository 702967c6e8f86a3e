"""Keeping a set of child processes running: the heart of `captionbot up`.

A child that dies is started again after a backoff (1 s, doubling to 30 s, back to 1 s once it has
stayed up a while), so one dead worker never takes the bot down with it. Only a crash loop (more
than `restart_limit` exits of one child within `restart_window_s`) stops everything, because then
restarting only hides a broken configuration. A stop request (Ctrl-C, SIGTERM) stops every child
with exactly one SIGTERM, then SIGKILL after the grace.
"""
from __future__ import annotations

import logging
import shlex
import signal
import subprocess
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RestartPolicy:
    """When a dead child is started again, and when restarting it is no longer worth it."""

    first_delay_s: float = 1.0
    max_delay_s: float = 30.0
    stable_after_s: float = 60.0  # a child up this long starts its backoff again from first_delay_s
    restart_limit: int = 5  # more exits than this within the window is a crash loop
    restart_window_s: float = 300.0
    stop_grace_s: float = 20.0  # after SIGTERM, how long a child may finish its job before SIGKILL
    poll_interval_s: float = 0.2  # how soon a death is noticed

    def delay(self, failures_in_a_row: int) -> float:
        """Exponential backoff: first_delay_s, twice that, … capped at max_delay_s."""
        return min(self.max_delay_s, self.first_delay_s * 2**failures_in_a_row)


class CrashLoop(Exception):
    """A child died more often than the policy allows; the message says which and where to look."""


@dataclass
class Child:
    """One supervised command and what is known about its recent deaths."""

    name: str
    command: list[str]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    restart_at: float = 0.0  # when a dead child is due to start again
    failures_in_a_row: int = 0
    exits: deque[float] = field(default_factory=deque)  # monotonic times of exits within the window


def describe_status(returncode: int) -> str:
    """"-9 (SIGKILL)" for a signal, "1" for an exit code: what a reader of the log needs."""
    if returncode < 0:
        try:
            return f"{returncode} ({signal.Signals(-returncode).name})"
        except ValueError:
            pass
    return str(returncode)


class Supervisor:
    """Starts the children, restarts the ones that die, and stops them all on request or crash loop."""

    def __init__(self, commands: dict[str, list[str]], env: dict[str, str], policy: RestartPolicy,
                 on_step: Callable[[], None] | None = None) -> None:
        """`on_step`: called after every step (each poll interval), e.g. to announce readiness."""
        self.children = [Child(name, command) for name, command in commands.items()]
        self.env = env
        self.policy = policy
        self.on_step = on_step
        self._stop_requested = False

    def request_stop(self, *_signal_args: object) -> None:
        """Safe as a signal handler: the main loop notices it within one poll interval."""
        self._stop_requested = True

    def run(self) -> int:
        """Supervise until a stop request (returns 0) or a crash loop (logs why, returns 1)."""
        try:
            for child in self.children:
                self._start(child)
            while not self._stop_requested:
                self.step()
                if self.on_step is not None:
                    self.on_step()
                time.sleep(self.policy.poll_interval_s)
            log.info("stopping")
            return 0
        except CrashLoop as crash_loop:
            log.error("%s", crash_loop)
            return 1
        finally:
            self.stop()

    def step(self) -> None:
        """Notice dead children and start the ones whose backoff is over; raises CrashLoop."""
        now = time.monotonic()
        for child in self.children:
            if child.process is not None and child.process.poll() is not None:
                self._on_exit(child, now)
            if child.process is None and now >= child.restart_at and not self._stop_requested:
                self._start(child)

    def _start(self, child: Child) -> None:
        # A process group of its own: Ctrl-C reaches only this supervisor, which then stops each
        # child with exactly one SIGTERM (a second signal would make RQ abandon a running job).
        child.process = subprocess.Popen(child.command, env=self.env, process_group=0)
        child.started_at = time.monotonic()
        log.info("started %s (pid %d)", child.name, child.process.pid)

    def _on_exit(self, child: Child, now: float) -> None:
        status = describe_status(child.process.returncode)
        child.process = None
        if now - child.started_at >= self.policy.stable_after_s:
            child.failures_in_a_row = 0
        child.exits.append(now)
        while child.exits and now - child.exits[0] > self.policy.restart_window_s:
            child.exits.popleft()
        if len(child.exits) > self.policy.restart_limit:
            raise CrashLoop(
                f"{child.name} keeps dying: it exited with status {status}, {len(child.exits)} times within "
                f"{self.policy.restart_window_s:g} s; stopping everything. Its last log lines above say why; "
                f"to watch it start alone, run: {shlex.join(child.command)}"
            )
        delay = self.policy.delay(child.failures_in_a_row)
        child.failures_in_a_row += 1
        child.restart_at = now + delay
        log.warning("%s exited with status %s; restarting it in %.1f s", child.name, status, delay)

    def stop(self) -> None:
        """One SIGTERM each (a worker finishes its current job), then SIGKILL whoever is still there."""
        running = [child for child in self.children if child.process is not None and child.process.poll() is None]
        for child in running:
            child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.policy.stop_grace_s
        for child in running:
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in time; killing it", child.name)
                child.process.kill()
                child.process.wait()
