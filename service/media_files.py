"""Deleting a stored photo, shared by /forget (bot) and a job whose request was forgotten (worker)."""
from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def delete_media_file(path: Path, media_dir: Path) -> bool:
    """Remove one stored photo; only files inside the media store are ever touched."""
    resolved = path.resolve()
    if not resolved.is_relative_to(media_dir.resolve()):
        log.warning("not deleting %s: outside the media store %s", resolved, media_dir)
        return False
    try:
        resolved.unlink()
    except FileNotFoundError:
        return False
    return True
