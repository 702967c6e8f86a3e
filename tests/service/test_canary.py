"""Canary rollout in the database: starting one, what workers are told to serve, and the ratings
deciding it both ways (PostgreSQL, no workers: tests/worker/test_canary_rollout.py has those)."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from canary_fixtures import seed_ratings

from service.canary import canary_standing, end_canary, promote_canary, serving_plan, settle_canary, start_canary
from service.model_versions import ActivationError, activate, register_bundle
from service.settings import Settings
from store.canaries import running_canary
from store.db import session_scope
from store.models import CanaryRollout, ModelStatus
from store.queries import active_model_version, add_model_version, get_model_version

SETTINGS = Settings(_env_file=None, canary_min_ratings=40, canary_alpha=0.05)


def bundle(root: Path, version: str) -> Path:
    path = root / version
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"version": version, "encoder": "efficientnet_lite0"}))
    return path


@pytest.fixture
def versions(session_factory, tmp_path):
    """v1 active, v2 a candidate."""
    with session_scope(session_factory) as session:
        register_bundle(session, bundle(tmp_path, "v1"))
        add_model_version(session, version="v2", encoder="efficientnet_lite0", path=str(bundle(tmp_path, "v2")))
    return session_factory


def test_a_canary_is_what_workers_serve_beside_the_active_version(versions):
    with session_scope(versions) as session:
        start_canary(session, "v2", 0.2, started_by=9000)
    with session_scope(versions) as session:
        plan = serving_plan(session)
    assert (plan.active_version, plan.canary_version, plan.canary_fraction) == ("v1", "v2", 0.2)
    assert plan.canary_path.name == "v2"


def test_a_second_canary_is_refused_while_one_runs_but_its_own_share_can_change(versions, tmp_path):
    with session_scope(versions) as session:
        add_model_version(session, version="v3", encoder="efficientnet_lite0", path=str(bundle(tmp_path, "v3")))
        start_canary(session, "v2", 0.2, started_by=9000)
    with session_scope(versions) as session, pytest.raises(ActivationError, match="v2 is already a canary"):
        start_canary(session, "v3", 0.5, started_by=9000)
    with session_scope(versions) as session:
        start_canary(session, "v2", 0.5, started_by=9000)
        assert running_canary(session).fraction == 0.5
    with session_scope(versions) as session:  # a retraining's newer version replaces it
        start_canary(session, "v3", 0.3, started_by=None, replace=True)
    with session_scope(versions) as session:
        assert serving_plan(session).canary_version == "v3"
        assert session.query(CanaryRollout).filter_by(version="v2").one().outcome == "superseded"


@pytest.mark.parametrize("version, fraction, why", [("v1", 0.2, "is the active model"), ("v2", 1.0, "between 0 and 100"),
                                                    ("nope", 0.2, "no model version")])
def test_a_canary_of_the_active_version_an_unknown_one_or_a_whole_share_is_refused(versions, version, fraction, why):
    with session_scope(versions) as session, pytest.raises(ActivationError, match=why):
        start_canary(session, version, fraction, started_by=9000)


def test_ratings_wait_for_the_minimum_on_both_sides(versions):
    with session_scope(versions) as session:
        start_canary(session, "v2", 0.5, started_by=9000)
        seed_ratings(session, "v2", up=5, down=34)
        seed_ratings(session, "v1", up=40, down=10)
    assert settle_canary(versions, SETTINGS) is None
    with session_scope(versions) as session:
        assert serving_plan(session).canary_version == "v2"


def test_a_worse_canary_is_ended_and_the_active_version_stays(versions):
    with session_scope(versions) as session:
        seed_ratings(session, "v2", up=40, down=0)  # before the canary started: not counted
        start_canary(session, "v2", 0.5, started_by=9000)
        seed_ratings(session, "v2", up=15, down=25)
        seed_ratings(session, "v1", up=30, down=15)
    standing = settle_canary(versions, SETTINGS)
    assert standing.decision.verdict == "end" and standing.decision.canary.total == 40
    assert "v2: 👍 37.5% (15 of 40 ratings)" in standing.describe()
    with session_scope(versions) as session:
        assert active_model_version(session).version == "v1"
        assert serving_plan(session).canary_version is None
        assert get_model_version(session, "v2").status is ModelStatus.candidate
        ended = session.query(CanaryRollout).one()
        assert ended.outcome == "ended" and "p = " in ended.notes
    assert settle_canary(versions, SETTINGS) is None  # decided once


def test_a_better_canary_is_promoted(versions):
    with session_scope(versions) as session:
        start_canary(session, "v2", 0.5, started_by=9000)
        seed_ratings(session, "v2", up=35, down=5)
        seed_ratings(session, "v1", up=25, down=20)
    standing = settle_canary(versions, SETTINGS)
    assert standing.decision.verdict == "promote"
    with session_scope(versions) as session:
        assert active_model_version(session).version == "v2"
        assert get_model_version(session, "v1").status is ModelStatus.retired
        assert running_canary(session) is None


def test_two_ratings_settling_at_once_promote_once(versions):
    with session_scope(versions) as session:
        start_canary(session, "v2", 0.5, started_by=9000)
        seed_ratings(session, "v2", up=35, down=5)
        seed_ratings(session, "v1", up=25, down=20)
    results = []
    threads = [threading.Thread(target=lambda: results.append(settle_canary(versions, SETTINGS))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(result is not None for result in results) == 1


def test_promote_and_rollback_override_the_ratings(versions):
    with session_scope(versions) as session:
        start_canary(session, "v2", 0.5, started_by=9000)
        seed_ratings(session, "v2", up=0, down=40)  # the ratings would end it
    with session_scope(versions) as session:
        assert promote_canary(session) == ("v2", "v1")
    with session_scope(versions) as session:
        assert active_model_version(session).version == "v2" and canary_standing(session, SETTINGS) is None
        start_canary(session, "v1", 0.5, started_by=9000)
    with session_scope(versions) as session:
        assert end_canary(session) == "v1"
        assert end_canary(session) is None and promote_canary(session) is None
    with session_scope(versions) as session:
        assert active_model_version(session).version == "v2" and serving_plan(session).canary_version is None


def test_activating_another_version_ends_the_canary_it_was_measured_against(versions):
    with session_scope(versions) as session:
        start_canary(session, "v2", 0.5, started_by=9000)
    with session_scope(versions) as session:
        activate(session, "v1")  # already active: nothing changes
        assert running_canary(session) is not None
        activate(session, "v2")
    with session_scope(versions) as session:
        assert running_canary(session) is None
        assert session.query(CanaryRollout).one().outcome == "promoted"
