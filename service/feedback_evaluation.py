"""Judging model versions by what users said: 👍 share with its uncertainty, correction rate, and
(where the caller can afford the caption metrics) BLEU-4 / CIDEr-D against the corrections.

Light on purpose: the bot imports this for /models, so the BLEU/CIDEr columns come from a
`CorrectionScorer` the caller passes in (`worker.version_report.score_against_corrections` in
the CLI and the trainer); without one they stay None. A share of 3 ratings and a share of 3,000
are not the same evidence, hence the Wilson score interval next to every share.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy.orm import Session

from store.version_feedback import CorrectedCaption, RatedCaption, corrected_captions, version_feedback_counts

CorrectionScorer = Callable[[list[CorrectedCaption]], dict[str, float | None]]
Period = Literal["day", "week"]


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """The Wilson score interval of a share (95 % for z = 1.96); None when nothing was counted.

    Unlike p ± z·√(p(1−p)/n) it stays inside [0, 1] and does not collapse to a point at 0 or n
    successes, which matters for a version with a handful of ratings.
    """
    if n <= 0:
        return None
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be between 0 and n ({n}), not {successes}")
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half_width = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half_width), min(1.0, centre + half_width)


@dataclass(frozen=True)
class VersionEvaluation:
    """One version judged by its users. Shares are of ratings; correction rate is of captions served."""

    version: str
    served: int
    up: int
    down: int
    corrected: int
    first_served_at: datetime | None = None
    bleu4: float | None = None
    cider: float | None = None

    @property
    def rated(self) -> int:
        return self.up + self.down

    @property
    def up_share(self) -> float | None:
        return self.up / self.rated if self.rated else None

    @property
    def up_share_interval(self) -> tuple[float, float] | None:
        return wilson_interval(self.up, self.rated)

    @property
    def correction_rate(self) -> float | None:
        return self.corrected / self.served if self.served else None

    def as_json(self) -> dict[str, Any]:
        values = asdict(self)
        values["first_served_at"] = self.first_served_at.isoformat() if self.first_served_at else None
        interval = self.up_share_interval
        values.update(rated=self.rated, up_share=self.up_share, correction_rate=self.correction_rate,
                      up_share_ci95=list(interval) if interval else None)
        return values


def evaluate_versions(session: Session, scorer: CorrectionScorer | None = None) -> list[VersionEvaluation]:
    """Every version that served a caption, oldest first; BLEU/CIDEr only with a `scorer`."""
    corrected = corrected_captions(session) if scorer is not None else {}
    evaluations = []
    for counts in version_feedback_counts(session):
        scores = scorer(corrected[counts.version]) if counts.version in corrected else {}
        evaluations.append(
            VersionEvaluation(counts.version, counts.served, counts.up, counts.down, counts.corrected,
                              counts.first_served_at, scores.get("BLEU-4"), scores.get("CIDEr"))
        )
    return evaluations


def period_start(moment: datetime, period: Period) -> datetime:
    """The start (UTC midnight; Monday for a week) of the day or week holding `moment`."""
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday()) if period == "week" else day


def share_by_period(history: list[RatedCaption], period: Period) -> dict[str, list[tuple[datetime, int, int]]]:
    """Version → [(period start, 👍, ratings)] in time order: the share over time, one line per version."""
    buckets: dict[str, dict[datetime, list[int]]] = {}
    for rating in history:
        counts = buckets.setdefault(rating.version, {}).setdefault(period_start(rating.served_at, period), [0, 0])
        counts[0] += rating.value == "up"
        counts[1] += 1
    return {version: [(start, up, n) for start, (up, n) in sorted(by_start.items())] for version, by_start in buckets.items()}


def natural_period(history: list[RatedCaption], max_days: int = 60) -> Period:
    """Days while the ratings span at most `max_days`, else weeks, so the chart keeps few points."""
    if not history:
        return "day"
    span = max(r.served_at for r in history) - min(r.served_at for r in history)
    return "day" if span <= timedelta(days=max_days) else "week"


def format_share(evaluation: VersionEvaluation) -> str:
    """'80% [49–94%]' (the 95 % Wilson interval), or '–' without ratings."""
    interval = evaluation.up_share_interval
    if interval is None or evaluation.up_share is None:
        return "–"
    return f"{evaluation.up_share:.0%} [{interval[0] * 100:.0f}–{interval[1]:.0%}]"


def format_rate(rate: float | None) -> str:
    return "–" if rate is None else f"{rate:.0%}"
