"""The feedback report: its chart is a real PNG, and its summary says each version's numbers and
fits in a Telegram photo caption however many versions there are."""
from __future__ import annotations

import io

from feedback_seed import seed_feedback
from PIL import Image

from service.feedback_evaluation import VersionEvaluation
from store.db import session_scope
from worker.version_report import CAPTION_LIMIT, FeedbackReport, build_feedback_report, summarise

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_the_chart_is_a_png_that_decodes_at_the_size_it_was_drawn(session_factory, tmp_path):
    with session_scope(session_factory) as session:
        seed_feedback(session)
        report = build_feedback_report(session, tmp_path / "report", use_java=False)

    data = report.chart.read_bytes()
    assert report.chart.parent == tmp_path / "report" and data.startswith(PNG_SIGNATURE)
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        assert image.format == "PNG" and image.size == (1200, 450), "12 × 4.5 inches at 100 dpi"
        assert len(set(image.convert("L").getdata())) > 10, "something was drawn on it"
    assert report.period == "day" and report.over_time["v1-old"][0][1:] == (6, 6)


def test_the_summary_names_each_version_with_its_share_interval_and_correction_scores(session_factory, tmp_path):
    with session_scope(session_factory) as session:
        seed_feedback(session)
        text = summarise(build_feedback_report(session, tmp_path, use_java=False))

    lines = text.splitlines()
    assert [line.split(":")[0] for line in lines[1:]] == ["v2-new", "v1-old", "v0-unrated"], "newest first"
    assert "10 served · 👍 80% [49–94%] of 10 · 20% corrected · BLEU-4 1.000" in lines[2]
    assert "4 served · 👍 25% [5–70%] of 4 · 25% corrected · BLEU-4 0.000, CIDEr-D –" in lines[1]
    assert lines[3] == "v0-unrated: 2 served · 👍 – of 0 · 0% corrected"


def test_a_summary_of_many_versions_stops_within_telegrams_caption_limit_and_says_how_many_are_left(tmp_path):
    evaluations = [VersionEvaluation(f"retrain-2026110{i % 10}-{i:06d}", 100, 60, 40, 5, bleu4=0.3, cider=0.8)
                   for i in range(40)]
    report = FeedbackReport(evaluations, None, "day", {}, tmp_path / "chart.png")
    text = summarise(report)
    assert len(text) <= CAPTION_LIMIT
    shown = sum(1 for line in text.splitlines() if "served" in line)
    assert 3 < shown < 40 and text.endswith(f"… and {40 - shown} older (captionbot models --json)")
