"""The captioner a worker serves: loaded once at start, swapped when another version is activated.

Before each job (and while idle) the worker asks the database which version is active: one
indexed query, at most once a second. A new version's bundle is loaded in a background thread
while the old captioner keeps serving jobs; the swap is one reference assignment, so a job uses
one model from start to end. A bundle that fails to load (or names another version than its row)
is refused for the life of the process and the worker keeps the model it has.

Where no version is registered yet, the shipped bundle (settings.model_dir) is registered as the
active one, so there is always an active version to roll back to.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from captionbot.model_versions import ActivationError, ensure_active_version
from captionbot.settings import Settings
from store.db import session_scope
from store.queries import active_model_version

if TYPE_CHECKING:
    from captioning.captioner import Captioner

log = logging.getLogger(__name__)
CHECK_INTERVAL_S = 1.0
ChangeCallback = Callable[[str | None, dict[str, str]], None]


class ModelNotFound(FileNotFoundError):
    """No model bundle where the settings point: nothing to caption with."""


class CaptionerHolder:
    def __init__(self, settings: Settings, session_factory: sessionmaker[Session]) -> None:
        self._settings = settings
        self._session_factory = session_factory
        self._captioner: Captioner | None = None
        self._serving: str | None = None  # the version row whose bundle is loaded
        self._refused: dict[str, str] = {}  # version → why its bundle was refused
        self._loading: str | None = None
        self._lock = threading.Lock()
        self._checked_at = 0.0
        self.on_change: ChangeCallback | None = None  # told (serving, refused) after every swap or refusal

    @property
    def loaded_version(self) -> str | None:
        return None if self._captioner is None else self._captioner.version

    @property
    def refused(self) -> dict[str, str]:
        with self._lock:
            return dict(self._refused)

    def load_initial(self) -> Captioner:
        """At start, blocking: the active version's bundle (registering the shipped one if none is
        active); if that does not load, the bundle at settings.model_dir."""
        target = self._active_target(register_default=True)
        captioner = None if target is None else self._try_load(*target)
        if captioner is None:
            captioner = self._load(self._settings.model_dir)
            target = (captioner.version, self._settings.model_dir)
        self._captioner, self._serving = captioner, target[0]
        self._notify()
        return captioner

    def current(self) -> Captioner:
        """The captioner for the next job (the old one while a newly activated one loads)."""
        if self._captioner is None:
            return self.load_initial()
        self.refresh()
        return self._captioner

    def refresh(self, force: bool = False) -> None:
        """Start loading the active version in the background if it is not the one served."""
        if self._captioner is None or (not force and time.monotonic() - self._checked_at < CHECK_INTERVAL_S):
            return
        self._checked_at = time.monotonic()
        target = self._active_target()
        if target is None:
            return
        version, path = target
        with self._lock:
            if version == self._serving or version in self._refused or self._loading is not None:
                return  # a load in progress finishes first; the next check picks up anything newer
            self._loading = version
        log.info("model %s was activated; loading it while %s keeps serving", version, self._serving)
        threading.Thread(target=self._load_in_background, args=(version, path), name=f"load-{version}", daemon=True).start()

    def wait_for_load(self, timeout: float) -> bool:
        """True once no load is in progress (for callers that want the switch done, e.g. tests)."""
        deadline = time.monotonic() + timeout
        while self._loading is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        return self._loading is None

    def _load_in_background(self, version: str, path: Path) -> None:
        captioner = self._try_load(version, path)
        with self._lock:
            self._loading = None
            if captioner is not None:
                previous, self._captioner, self._serving = self._serving, captioner, version
        if captioner is not None:
            log.info("switched from model %s to %s", previous, version)
        self._notify()

    def _notify(self) -> None:
        if self.on_change is not None:
            try:
                self.on_change(self._serving, self.refused)
            except Exception:  # reporting the switch must never stop the worker
                log.exception("could not report the served model")

    def _active_target(self, register_default: bool = False) -> tuple[str, Path] | None:
        try:
            with session_scope(self._session_factory) as session:
                if register_default:
                    try:
                        active = ensure_active_version(session, self._settings.model_dir)
                    except ActivationError:  # no shipped bundle to register; _load says so clearly
                        active = active_model_version(session)
                else:
                    active = active_model_version(session)
                return None if active is None else (active.version, Path(active.path))
        except SQLAlchemyError as error:
            log.warning("could not read the active model version: %s", error)
            return None

    def _try_load(self, version: str, path: Path) -> Captioner | None:
        try:
            captioner = self._load(path)
        except Exception as error:  # any broken bundle: the worker must keep serving the old model
            log.exception("refusing model %s at %s: it does not load", version, path)
            self._refuse(version, f"{error.__class__.__name__}: {error}"[:300])
            return None
        if captioner.version != version:
            log.error("refusing model %s: the bundle at %s says it is %s", version, path, captioner.version)
            self._refuse(version, f"the bundle says it is version {captioner.version}")
            return None
        return captioner

    def _refuse(self, version: str, reason: str) -> None:
        with self._lock:
            self._refused[version] = reason

    def _load(self, path: Path) -> Captioner:
        from captioning.captioner import Captioner

        if not (path / "config.json").is_file():
            raise ModelNotFound(f"no model bundle at {path}: train one, or point MODEL_DIR at one")
        log.info("loading captioner from %s", path)
        return Captioner.load(
            path, resnet50_weights=self._settings.resnet50_weights, max_pixels=self._settings.max_image_pixels
        )
