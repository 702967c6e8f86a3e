"""`captionbot model export-encoder`: the file it makes is the one a caption worker's load then finds."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from encoder_top_bundles import write_fine_tuned_bundle

from captionbot.cli import main
from captioning.captioner import Captioner
from captioning.encoder_runtimes import ExportedEncoder
from service.settings import get_settings

pytestmark = pytest.mark.slow


def test_export_encoder_makes_the_file_a_workers_load_then_reads_without_exporting(monkeypatch, tmp_path, capsys, caplog):
    bundle, _ = write_fine_tuned_bundle(tmp_path / "bundle")
    cache = Path(os.environ["ENCODER_CACHE_DIR"])  # the run's (tests/conftest.py): later tests find the file
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    try:
        assert main(["model", "export-encoder", "--model", str(bundle)]) == 0
    finally:
        get_settings.cache_clear()
    path = Path(capsys.readouterr().out.strip())
    assert path.parent == cache and path.is_file() and path.with_suffix(".json").is_file()
    modified = path.stat().st_mtime_ns

    caplog.set_level(logging.INFO, logger="captioning")
    captioner = Captioner.load(bundle, encoder_runtime="onnxruntime", encoder_cache_dir=cache)
    assert isinstance(captioner.encoder, ExportedEncoder)  # the fine-tuned top's file, found
    assert not [r for r in caplog.records if r.getMessage().startswith("exported encoder")]
    assert path.stat().st_mtime_ns == modified


def test_export_encoder_says_why_when_the_cache_cannot_be_written(monkeypatch, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("ENCODER_CACHE_DIR", str(blocker / "encoders"))
    get_settings.cache_clear()
    try:
        assert main(["model", "export-encoder", "--model", str(Path(__file__).parents[2] / "models" / "default")]) == 1
    finally:
        get_settings.cache_clear()
    assert "Not exported: cannot keep the exported encoder in" in capsys.readouterr().err
