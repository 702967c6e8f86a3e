"""The captioner a worker serves: loaded once at start, swapped when another version is activated.

Before each job (and while idle) the worker asks the database which version is active: one
indexed query, at most once a second. A new version's bundle is loaded in a background thread
while the old captioner keeps serving jobs; the swap is one reference assignment, so a job uses
one model from start to end. A bundle that fails to load (or names another version than its row)
is refused for the life of the process and the worker keeps the model it has.

A running canary (service.canary) is loaded the same way, after the active version, sharing
its encoder when both name the same one; `for_request` then gives the canary's share of requests
(service.canary_stats.serves_canary) to the canary and the rest to the active captioner. Until
the canary has loaded, its share is served by the active captioner, and the caption says so.
A promoted canary is already loaded: the swap is immediate.

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

from service.canary import ServingPlan, serving_plan
from service.canary_stats import serves_canary
from service.model_versions import ActivationError, ensure_active_version
from service.settings import Settings
from store.db import session_scope
from worker import metrics

if TYPE_CHECKING:
    from captioning.captioner import Captioner
    from captioning.encoders import ImageEncoder

log = logging.getLogger(__name__)
CHECK_INTERVAL_S = 1.0
# told (serving, refused, canary) after every swap or refusal; canary is "VERSION PERCENT%" or None
ChangeCallback = Callable[[str | None, dict[str, str], str | None], None]


class ModelNotFound(FileNotFoundError):
    """No model bundle where the settings point: nothing to caption with."""


class CaptionerHolder:
    def __init__(self, settings: Settings, session_factory: sessionmaker[Session]) -> None:
        self._settings = settings
        self._session_factory = session_factory
        self._captioner: Captioner | None = None
        self._serving: str | None = None  # the version row whose bundle is loaded
        self._canary: Captioner | None = None  # loaded, and still the running canary
        self._canary_fraction = 0.0
        self._canary_wanted: str | None = None
        self._refused: dict[str, str] = {}  # version → why its bundle was refused
        self._loading: str | None = None
        self._lock = threading.Lock()
        self._checked_at = 0.0
        self.on_change: ChangeCallback | None = None

    @property
    def loaded_version(self) -> str | None:
        return None if self._captioner is None else self._captioner.version

    @property
    def canary_version(self) -> str | None:
        """The canary's version once its bundle is loaded (before that the active one serves all)."""
        canary = self._canary
        return None if canary is None else canary.version

    @property
    def encoder_runtime(self) -> str | None:
        """What runs the active captioner's encoder (TensorFlow if ENCODER_RUNTIME's fell back)."""
        captioner = self._captioner
        return None if captioner is None else captioner.encoder.runtime

    @property
    def refused(self) -> dict[str, str]:
        with self._lock:
            return dict(self._refused)

    def load_initial(self) -> Captioner:
        """At start, blocking: the active version's bundle (registering the shipped one if none is
        active); if that does not load, the bundle at settings.model_dir. A canary loads later,
        in the background."""
        plan = self._plan(register_default=True)
        captioner = None if plan is None else self._try_load(plan.active_version, plan.active_path)
        version = None if plan is None else plan.active_version
        if captioner is None:
            captioner = self._load(self._settings.model_dir)
            version = captioner.version
        self._captioner, self._serving = captioner, version
        self._notify()
        return captioner

    def current(self) -> Captioner:
        """The active captioner for the next job (the old one while a newly activated one loads)."""
        if self._captioner is None:
            return self.load_initial()
        self.refresh()
        return self._captioner

    def for_request(self, request_id: int) -> Captioner:
        """The captioner for this request: the canary's for its share, once loaded, else the active one."""
        active = self.current()
        with self._lock:
            canary, fraction = self._canary, self._canary_fraction
        if canary is not None and serves_canary(request_id, canary.version, fraction):
            return canary
        return active

    def for_version(self, version: str) -> Captioner:
        """The loaded captioner of this version (the active one or the canary), else the active one."""
        active = self.current()
        with self._lock:
            canary = self._canary
        return canary if canary is not None and canary.version == version else active

    def refresh(self, force: bool = False) -> None:
        """Follow the serving plan: swap to a promoted canary at once; start loading a newly
        activated version, or else a new canary, in the background; drop an ended canary."""
        if self._captioner is None or (not force and time.monotonic() - self._checked_at < CHECK_INTERVAL_S):
            return
        self._checked_at = time.monotonic()
        plan = self._plan()
        if plan is None:
            return
        load: tuple[str, Path, str] | None = None
        with self._lock:
            changed = self._follow_canary(plan)
            if plan.active_version != self._serving:
                if self._canary is not None and self._canary.version == plan.active_version:
                    previous, self._captioner, self._serving = self._serving, self._canary, plan.active_version
                    self._canary, changed = None, True
                    log.info("switched from model %s to its loaded canary %s", previous, plan.active_version)
                elif plan.active_version not in self._refused and self._loading is None:
                    load = (plan.active_version, plan.active_path, "active")
            elif plan.canary_version is not None and self._canary is None and self._loading is None \
                    and plan.canary_version not in self._refused:
                load = (plan.canary_version, plan.canary_path, "canary")
            if load is not None:
                self._loading = load[0]
        if changed:
            self._notify()
        if load is None:
            return  # a load in progress finishes first; the next check picks up anything newer
        version, path, role = load
        log.info("model %s is the %s; loading it while %s keeps serving", version, role, self._serving)
        threading.Thread(target=self._load_in_background, args=load, name=f"load-{version}", daemon=True).start()

    def _follow_canary(self, plan: ServingPlan) -> bool:
        """Under the lock: note the plan's canary and fraction; drop a loaded one that no longer
        runs (unless it is being promoted). True if what is served changed."""
        self._canary_wanted, self._canary_fraction = plan.canary_version, plan.canary_fraction
        loaded = self._canary
        if loaded is None or loaded.version in (plan.canary_version, plan.active_version):
            return False
        log.info("canary %s ended; %s serves every photo", loaded.version, plan.active_version)
        self._canary = None
        return True

    def wait_for_load(self, timeout: float) -> bool:
        """True once no load is in progress (for callers that want the switch done, e.g. tests)."""
        deadline = time.monotonic() + timeout
        while self._loading is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        return self._loading is None

    def _load_in_background(self, version: str, path: Path, role: str) -> None:
        shared = self._captioner.encoder if role == "canary" and self._captioner is not None else None
        captioner = self._try_load(version, path, encoder=shared)
        with self._lock:
            self._loading = None
            if captioner is not None and role == "active":
                previous, self._captioner, self._serving = self._serving, captioner, version
            elif captioner is not None and version == self._canary_wanted:
                self._canary = captioner
        if captioner is not None and role == "active":
            log.info("switched from model %s to %s", previous, version)
        self._notify()

    def _notify(self) -> None:
        if self.on_change is not None:
            canary = self._canary
            described = None if canary is None else f"{canary.version} {self._canary_fraction:.0%}"
            try:
                self.on_change(self._serving, self.refused, described)
            except Exception:  # reporting the switch must never stop the worker
                log.exception("could not report the served model")

    def _plan(self, register_default: bool = False) -> ServingPlan | None:
        try:
            with session_scope(self._session_factory) as session:
                if register_default:
                    try:
                        ensure_active_version(session, self._settings.model_dir)
                    except ActivationError:  # no shipped bundle to register; _load says so clearly
                        pass
                return serving_plan(session)
        except SQLAlchemyError as error:
            log.warning("could not read the active model version: %s", error)
            return None

    def _try_load(self, version: str, path: Path, encoder: ImageEncoder | None = None) -> Captioner | None:
        try:
            captioner = self._load(path, encoder)
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

    def _load(self, path: Path, encoder: ImageEncoder | None = None) -> Captioner:
        from captioning.captioner import Captioner

        if not (path / "config.json").is_file():
            raise ModelNotFound(f"no model bundle at {path}: train one, or point MODEL_DIR at one")
        log.info("loading captioner from %s (encoder runtime: %s)", path, self._settings.encoder_runtime)
        with metrics.model_load():
            captioner = Captioner.load(
                path, resnet50_weights=self._settings.resnet50_weights, max_pixels=self._settings.max_image_pixels,
                encoder=encoder, encoder_runtime=self._settings.encoder_runtime,
                encoder_cache_dir=self._settings.resolved_encoder_cache_dir,
            )
        log.info("loaded model %s; its encoder runs in %s", captioner.version, captioner.encoder.runtime)
        return captioner
