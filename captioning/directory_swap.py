"""Replacing a directory of files (a model bundle, a training checkpoint) so that a reader, or a
process stopped at any moment, finds the old one whole or the new one whole, never a mixture.

The new directory is written beside the final one (NAME.tmp), its files synced, then swapped in
with renames: on Linux a directory cannot be renamed over a non-empty one, so the old one goes to
NAME.old first and is removed last. A stop between those two renames leaves only NAME.old, whole:
`readable_directory` reads it there and the next `replace_directory` puts it back first.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path


def temporary_path(final: Path) -> Path:
    return final.with_name(final.name + ".tmp")


def previous_path(final: Path) -> Path:
    return final.with_name(final.name + ".old")


def readable_directory(final: Path) -> Path:
    """Where the last complete version of `final` is: `final`, or its .old left by a stop between
    the renames (`final` itself when neither exists, so errors name it)."""
    final = Path(final)
    previous = previous_path(final)
    return previous if not final.is_dir() and previous.is_dir() else final


def clean_leftovers(final: Path) -> None:
    """Undo what a stopped `replace_directory` left: put a lone .old back, drop a half-written .tmp
    and an .old the new version already replaced."""
    final = Path(final)
    previous = previous_path(final)
    if not final.exists() and previous.is_dir():
        previous.replace(final)
    shutil.rmtree(temporary_path(final), ignore_errors=True)
    shutil.rmtree(previous, ignore_errors=True)


def replace_directory(final: Path, write: Callable[[Path], None]) -> Path:
    """Call `write(folder)` to fill a fresh temporary folder, then swap it in as `final`. If `write`
    raises, the temporary folder is removed and `final` is as it was."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(final)
    temporary, previous = temporary_path(final), previous_path(final)
    temporary.mkdir()
    try:
        write(temporary)
        _sync_files(temporary)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    if final.exists():
        final.replace(previous)
    temporary.replace(final)
    shutil.rmtree(previous, ignore_errors=True)
    return final


def _sync_files(folder: Path) -> None:
    """On disk before the rename makes them the current version (a power cut included)."""
    for path in folder.iterdir():
        if path.is_file():
            with open(path, "rb") as file:
                os.fsync(file.fileno())
