"""The captioner a worker serves: loaded once at start, swapped when another version is activated.

Before each job the worker asks the database which version is active (one indexed query). A new
one is loaded while the old one keeps serving; a bundle that fails to load is refused once and
the worker keeps the model it has.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from captionbot.settings import Settings
from store.db import session_scope
from store.queries import active_model_version

if TYPE_CHECKING:
    from captioning.captioner import Captioner

log = logging.getLogger(__name__)


class ModelNotFound(FileNotFoundError):
    """No model bundle where the settings point: nothing to caption with."""


class CaptionerHolder:
    def __init__(self, settings: Settings, session_factory: sessionmaker[Session]) -> None:
        self._settings = settings
        self._session_factory = session_factory
        self._captioner: Captioner | None = None
        self._refused: set[str] = set()

    @property
    def loaded_version(self) -> str | None:
        return None if self._captioner is None else self._captioner.version

    def load_initial(self) -> Captioner:
        """The active version's bundle if one is registered and loads, else settings.model_dir."""
        target = self._active_target()
        if target is not None:
            captioner = self._try_load(*target)
            if captioner is not None:
                self._captioner = captioner
                return captioner
        self._captioner = self._load(self._settings.model_dir)
        return self._captioner

    def current(self) -> Captioner:
        """The captioner for the next job, switching first if another version was activated."""
        if self._captioner is None:
            return self.load_initial()
        target = self._active_target()
        if target is not None and target[0] != self._captioner.version and target[0] not in self._refused:
            replacement = self._try_load(*target)
            if replacement is not None:
                log.info("switched from model %s to %s", self._captioner.version, replacement.version)
                self._captioner = replacement
        return self._captioner

    def _active_target(self) -> tuple[str, Path] | None:
        try:
            with session_scope(self._session_factory) as session:
                active = active_model_version(session)
                return None if active is None else (active.version, Path(active.path))
        except SQLAlchemyError as error:
            log.warning("could not read the active model version: %s", error)
            return None

    def _try_load(self, version: str, path: Path) -> Captioner | None:
        try:
            return self._load(path)
        except Exception:  # any broken bundle: the worker must keep serving the old model
            log.exception("refusing model %s at %s: it does not load", version, path)
            self._refused.add(version)
            return None

    def _load(self, path: Path) -> Captioner:
        from captioning.captioner import Captioner

        if not (path / "config.json").is_file():
            raise ModelNotFound(f"no model bundle at {path}: train one, or point MODEL_DIR at one")
        log.info("loading captioner from %s", path)
        return Captioner.load(
            path, resnet50_weights=self._settings.resnet50_weights, max_pixels=self._settings.max_image_pixels
        )
