"""The package table of ARCHITECTURE.md, checked: imports run one way, and nothing imports the top.

Every import counts, including those inside functions (a lazy import is still a dependency).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PROJECT_PACKAGES = {"captionbot", "bot", "worker", "service", "training", "captioning", "store", "sandbox", "migrations"}
# What each package may import from the project (besides itself).
MAY_IMPORT = {
    "captionbot": PROJECT_PACKAGES,
    "bot": {"service", "store"},
    "worker": {"service", "captioning", "store", "training"},
    "service": {"store"},
    "training": {"captioning", "store"},
    "captioning": set(),
    "store": set(),
    "sandbox": set(),
    "migrations": {"store"},
}
# Third-party packages a light package must never load.
HEAVY = {"tensorflow", "keras", "matplotlib", "nltk", "pycocoevalcap", "tf2onnx", "onnx", "onnxruntime", "openvino"}
LIGHT = {"bot", "service", "store", "sandbox", "migrations"}


def imported_packages(path: Path) -> set[str]:
    """Top-level names of every module `path` imports (absolute imports only; the project has no relative ones)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import"
            names.add((node.module or "").split(".")[0])
    return names


def package_modules(package: str) -> list[Path]:
    return sorted((REPO_ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(MAY_IMPORT))
def test_a_package_imports_only_the_packages_below_it(package: str) -> None:
    modules = package_modules(package)
    assert modules, f"{package}/ has no modules"
    allowed = MAY_IMPORT[package] | {package}
    wrong = {
        f"{path.relative_to(REPO_ROOT)} imports {name}"
        for path in modules
        for name in imported_packages(path) & PROJECT_PACKAGES - allowed
    }
    if package in LIGHT:
        wrong |= {f"{path.relative_to(REPO_ROOT)} imports {name}" for path in modules for name in imported_packages(path) & HEAVY}
    assert not wrong, "\n".join(sorted(wrong))


def test_the_checker_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    module = tmp_path / "lazy.py"
    module.write_text("def f():\n    from captionbot.settings import Settings\n    import tensorflow as tf\n")
    assert {"captionbot", "tensorflow"} <= imported_packages(module)
