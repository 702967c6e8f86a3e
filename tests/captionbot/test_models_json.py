"""`captionbot models` shows what users said of each version; `--json` gives the full evaluation,
with BLEU-4 / CIDEr-D against corrections, on a seeded PostgreSQL store."""
from __future__ import annotations

import json

import pytest
from feedback_seed import seed_feedback

from captionbot.cli import main
from service.settings import get_settings
from store.db import session_scope


@pytest.fixture
def seeded(monkeypatch, tmp_path, pg_url, redis_url, session_factory):
    """The seeded store, and a shipped bundle (its config.json is all `models` reads) named v2-new."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "config.json").write_text(json.dumps({"version": "v2-new", "encoder": "efficientnet_lite2"}))
    for key, value in {"DATABASE_URL": pg_url, "REDIS_URL": redis_url, "DATA_DIR": str(tmp_path / "data"),
                       "MODEL_DIR": str(bundle)}.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    with session_scope(session_factory) as session:
        seed_feedback(session)
    yield
    get_settings.cache_clear()


def test_models_json_holds_every_versions_counts_share_interval_and_scores_against_corrections(seeded, capsys):
    assert main(["models", "--json"]) == 0
    versions = {v["version"]: v for v in json.loads(capsys.readouterr().out)["versions"]}

    # Registered versions first (newest first), then the others that served, oldest first (a tie goes by name).
    assert list(versions) == ["v2-new", "v0-unrated", "v1-old"]
    v2, v1, v0 = versions["v2-new"], versions["v1-old"], versions["v0-unrated"]
    assert v2["status"] == "active" and v1["status"] is None
    assert (v1["served"], v1["up"], v1["down"], v1["rated"], v1["corrected"]) == (10, 8, 2, 10, 2)
    assert v1["up_share"] == 0.8 and v1["up_share_ci95"] == pytest.approx([0.4902, 0.9433], abs=5e-5)
    assert v1["correction_rate"] == 0.2 and v1["bleu4"] == pytest.approx(1.0, abs=1e-6) and v1["cider"] > 0
    assert v2["up_share"] == 0.25 and v2["bleu4"] == pytest.approx(0.0, abs=1e-6) and v2["cider"] is None
    assert v0["up_share"] is None and v0["up_share_ci95"] is None and v0["bleu4"] is None
    assert v1["first_served_at"].startswith("2026-11-02T09:30")


def test_models_table_shows_served_share_with_its_interval_and_correction_rate(seeded, capsys):
    assert main(["models"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("*v2-new"))
    assert line.split()[4:8] == ["4", "25%", "[5–70%]", "25%"]
