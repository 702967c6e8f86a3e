"""`captionbot retrain`, `captionbot models` and `captionbot model activate` against real PostgreSQL
and Redis, on the tiny Flickr8k of coloured squares."""
from __future__ import annotations

import shutil

import pytest

from captionbot.cli import main
from service.retrain_lock import RetrainLock
from service.settings import get_settings
from store.db import session_scope
from store.models import ModelStatus
from store.queries import active_model_version, add_model_version, get_model_version

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def squares(tmp_path_factory, shared_squares):
    return shared_squares.with_own_features(tmp_path_factory.mktemp("squares"))


@pytest.fixture
def environment(monkeypatch, tmp_path, pg_url, redis_url, db_engine, squares):
    base = squares.base
    values = {
        "DATABASE_URL": pg_url, "REDIS_URL": redis_url, "DATA_DIR": str(tmp_path / "data"), "MODEL_DIR": str(base),
        "FLICKR8K_DIR": str(squares.flickr8k), "FEATURES_DIR": str(squares.features), "RETRAIN_EPOCHS": "2",
        "RETRAIN_BATCH_SIZE": "8", "RETRAIN_LEARNING_RATE": "0.001", "RETRAIN_TOLERANCE_BLEU4": "1", "RETRAIN_TOLERANCE_CIDER": "100",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield {"base": base, "tmp": tmp_path}
    get_settings.cache_clear()


def test_retrain_on_the_command_line_registers_a_version_that_models_lists_and_activate_switches_back(environment, session_factory, capsys):
    assert main(["retrain"]) == 0
    printed = capsys.readouterr()
    assert "Retraining finished" in printed.out and "Promoted:" in printed.out and "Epoch 1/1 (self-critical)" in printed.err
    with session_scope(session_factory) as session:
        new = active_model_version(session)
        assert new.version.startswith("retrain-") and new.parent_version == "squares-base"

    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert f"*{new.version}" in listing and "squares-base" in listing and "retired" in listing

    assert main(["model", "activate", "squares-base"]) == 0
    assert f"squares-base is the active model (was {new.version})" in capsys.readouterr().out
    with session_scope(session_factory) as session:
        assert active_model_version(session).version == "squares-base"
        assert get_model_version(session, new.version).status is ModelStatus.retired


def test_activate_refuses_a_bundle_that_does_not_load_and_unknown_versions(environment, session_factory, capsys):
    broken = environment["tmp"] / "broken"
    shutil.copytree(environment["base"], broken)
    (broken / "decoder.weights.npz").write_bytes(b"garbage")
    assert main(["models"]) == 0  # registers the shipped bundle as the active version
    with session_scope(session_factory) as session:
        add_model_version(session, version="broken-1", encoder="efficientnet_lite0", path=str(broken))

    assert main(["model", "activate", "broken-1"]) == 1
    assert "does not load" in capsys.readouterr().err
    assert main(["model", "activate", "no-such-version"]) == 1
    assert "no model version 'no-such-version'" in capsys.readouterr().err
    with session_scope(session_factory) as session:
        assert active_model_version(session).version == "squares-base"


def test_retrain_on_the_command_line_refuses_to_start_while_another_run_holds_the_lock(environment, redis_client, capsys):
    RetrainLock(redis_client).acquire(60, requested_by=7)
    assert main(["retrain"]) == 1
    assert "already queued" in capsys.readouterr().err
