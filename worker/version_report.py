"""The feedback report: every model version judged by its users, with BLEU-4 / CIDEr-D of its
captions against the corrections people typed, a chart, and a short summary for a photo caption.

It lives here, not beside /models, because the caption metrics (pycocoevalcap, NLTK, a Java
tokenizer) and matplotlib are too heavy for the bot: the trainer runs it for /report
(worker/feedback_report.py) and `captionbot models --json` runs it in the foreground.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from captioning.metrics import score_captions
from service.feedback_evaluation import (
    Period,
    VersionEvaluation,
    evaluate_versions,
    format_rate,
    format_share,
    natural_period,
    share_by_period,
)
from store.queries import active_model_version
from store.version_feedback import CorrectedCaption, rating_history
from training.plots import plot_version_feedback

# CIDEr-D takes its document frequencies from the references being scored: with one corrected
# caption every n-gram is in every "document" and the score is 0 whatever the caption says.
MIN_CAPTIONS_FOR_CIDER = 2
# Telegram's limit on a photo's caption.
CAPTION_LIMIT = 1024


def score_against_corrections(captions: list[CorrectedCaption], use_java: bool | None = None) -> dict[str, float | None]:
    """Corpus BLEU-4 and CIDEr-D of a version's corrected captions (hypothesis: the caption;
    references: its corrections); CIDEr-D is None below MIN_CAPTIONS_FOR_CIDER captions."""
    if not captions:
        return {"BLEU-4": None, "CIDEr": None}
    references = {str(c.caption_id): list(c.corrections) for c in captions}
    hypotheses = {str(c.caption_id): c.text for c in captions}
    scores = score_captions(references, hypotheses, use_java=use_java)
    return {"BLEU-4": scores["BLEU-4"], "CIDEr": scores["CIDEr"] if len(captions) >= MIN_CAPTIONS_FOR_CIDER else None}


def evaluate_with_scores(session: Session, use_java: bool | None = None) -> list[VersionEvaluation]:
    """Every version that served a caption, with its BLEU-4 / CIDEr-D against corrections."""
    return evaluate_versions(session, lambda captions: score_against_corrections(captions, use_java))


@dataclass(frozen=True)
class FeedbackReport:
    evaluations: list[VersionEvaluation]
    active_version: str | None
    period: Period
    over_time: dict[str, list[tuple[datetime, int, int]]]
    chart: Path

    def as_json(self) -> dict[str, Any]:
        return {
            "versions": [e.as_json() for e in self.evaluations],
            "active_version": self.active_version,
            "period": self.period,
            "over_time": {version: [{"start": start.isoformat(), "up": up, "rated": rated} for start, up, rated in points]
                          for version, points in self.over_time.items()},
            "chart": str(self.chart),
        }


def build_feedback_report(session: Session, out_dir: Path, use_java: bool | None = None) -> FeedbackReport:
    """Evaluate every version and draw the chart into `out_dir`."""
    evaluations = evaluate_with_scores(session, use_java)
    history = rating_history(session)
    period = natural_period(history)
    over_time = share_by_period(history, period)
    active = active_model_version(session)
    shares = [(e.version, e.up_share, e.up_share_interval) for e in evaluations if e.up_share is not None]
    lines = {version: [(start, up / rated) for start, up, rated in points] for version, points in over_time.items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    chart = plot_version_feedback(shares, lines, period, out_dir / "feedback_by_version.png")
    return FeedbackReport(evaluations, active.version if active else None, period, over_time, chart)


def describe_version(evaluation: VersionEvaluation, active: bool = False) -> str:
    """One line: 'v7 (active): 120 served · 👍 80% [49–94%] of 10 · 5% corrected · BLEU-4 0.412, CIDEr-D 1.234'."""
    parts = [f"{evaluation.served} served", f"👍 {format_share(evaluation)} of {evaluation.rated}",
             f"{format_rate(evaluation.correction_rate)} corrected"]
    if evaluation.bleu4 is not None:
        cider = "–" if evaluation.cider is None else f"{evaluation.cider:.3f}"
        parts.append(f"BLEU-4 {evaluation.bleu4:.3f}, CIDEr-D {cider} vs corrections")
    return f"{evaluation.version}{' (active)' if active else ''}: " + " · ".join(parts)


def summarise(report: FeedbackReport, limit: int = CAPTION_LIMIT) -> str:
    """The photo's caption: newest version first, as many as fit in `limit` characters."""
    if not report.evaluations:
        return "Feedback by model version: no captions served yet."
    header = "Feedback by model version (👍 share of ratings with its 95% interval):"
    lines = [header]
    newest_first = list(reversed(report.evaluations))
    for shown, evaluation in enumerate(newest_first):
        line = describe_version(evaluation, evaluation.version == report.active_version)
        rest = len(newest_first) - shown - 1
        more = f"… and {rest} older (captionbot models --json)" if rest else ""
        if len("\n".join([*lines, line, more])) > limit:
            lines.append(f"… and {rest + 1} older (captionbot models --json)")
            break
        lines.append(line)
    return "\n".join(lines)
