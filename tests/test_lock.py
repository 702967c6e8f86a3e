"""The lock files, checked against pyproject.toml and each other, so that a dependency edited in
pyproject.toml without re-locking (scripts/upgrade-lock.sh) fails here rather than at install."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCKS = ("requirements/lock.txt", "requirements/lock-test.txt")
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]


def locked_entries(name: str) -> dict[str, tuple[Requirement, list[str]]]:
    """Each locked package: its requirement line and the hashes under it."""
    text = (REPO_ROOT / name).read_text()
    entries: dict[str, tuple[Requirement, list[str]]] = {}
    for block in re.split(r"\n(?=[A-Za-z])", text):
        if not re.match(r"[A-Za-z]", block):
            continue
        requirement = Requirement(block.split("\\", 1)[0].split("\n", 1)[0].strip())
        entries[canonicalize_name(requirement.name)] = (requirement, re.findall(r"--hash=sha256:([0-9a-f]{64})", block))
    return entries


def locked_versions(name: str) -> dict[str, str]:
    return {key: next(iter(req.specifier)).version for key, (req, _) in locked_entries(name).items()}


@pytest.mark.parametrize("lock", LOCKS)
def test_every_locked_package_is_one_exact_version_with_hashes(lock: str) -> None:
    entries = locked_entries(lock)
    assert len(entries) > 50
    for key, (requirement, hashes) in entries.items():
        (specifier,) = requirement.specifier
        assert specifier.operator == "==" and "*" not in specifier.version, key
        assert hashes, f"{key} has no hash"


@pytest.mark.parametrize("lock, extras", [("requirements/lock.txt", []), ("requirements/lock-test.txt", ["test"])])
def test_the_lock_satisfies_every_requirement_of_pyproject(lock: str, extras: list[str]) -> None:
    versions = locked_versions(lock)
    wanted = list(PYPROJECT["dependencies"]) + [line for extra in extras for line in PYPROJECT["optional-dependencies"][extra]]
    for line in wanted:
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate({"platform_machine": "x86_64"}):
            continue
        key = canonicalize_name(requirement.name)
        assert key in versions, f"{requirement.name} is not in {lock}: run UPGRADE= bash scripts/upgrade-lock.sh"
        assert requirement.specifier.contains(versions[key], prereleases=True), (
            f"{lock} has {requirement.name}=={versions[key]}, outside {requirement.specifier}")


def test_the_runtime_lock_pins_the_test_locks_versions() -> None:
    runtime, whole = locked_versions("requirements/lock.txt"), locked_versions("requirements/lock-test.txt")
    assert {key: whole.get(key) for key in runtime} == runtime


def test_setup_and_the_dockerfile_install_the_lock_with_hashes() -> None:
    setup = (REPO_ROOT / "scripts/setup.sh").read_text()
    assert "LOCK=${LOCK:-requirements/lock-test.txt}" in setup
    assert 'pip" install --quiet --require-hashes -r "$LOCK"' in setup
    assert "--no-deps -e ." in setup
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert "pip install --require-hashes -r requirements/lock.txt" in dockerfile
