"""Whether a retrained model may replace the active one, and the words an admin reads about it.

The rule: val BLEU-4 and val CIDEr (same val images, same search, both models scored in the same
run) may each be worse than the active model's by at most a set tolerance. Pure functions, no
TensorFlow: the CLI and the trainer's Telegram reports share them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

GATED_METRICS = ("BLEU-4", "CIDEr")
TABLE_METRICS = ("BLEU-1", "BLEU-4", "CIDEr")


@dataclass(frozen=True)
class Decision:
    promote: bool
    reasons: list[str] = field(default_factory=list)  # why not, one line per failed check

    def summary(self) -> str:
        return "promoted" if self.promote else "not promoted: " + "; ".join(self.reasons)


def decide_promotion(candidate: dict[str, float], active: dict[str, float] | None, tolerance: dict[str, float]) -> Decision:
    """`candidate` and `active` are val scores; `tolerance` maps "BLEU-4" and "CIDEr" to the allowed drop."""
    if active is None:
        return Decision(True)
    reasons = []
    for metric in GATED_METRICS:
        allowed = active[metric] - tolerance[metric]
        if candidate[metric] < allowed:
            reasons.append(
                f"val {metric} {candidate[metric]:.3f} is below the active model's {active[metric]:.3f} "
                f"by more than {tolerance[metric]:g}"
            )
    return Decision(not reasons, reasons)


def describe_progress(event: dict[str, Any]) -> str:
    """One line for the progress message: stage, features x/y, or epoch k/n with loss and val BLEU-4."""
    kind = event.get("event")
    if kind == "features":
        return f"Encoding {event['source']} photos: {event['done']}/{event['total']}"
    if kind == "epoch":
        stage = " (self-critical)" if event.get("stage") == "scst" else ""
        return (
            f"Epoch {event['epoch']}/{event['epochs']}{stage}: loss {event['loss']:.3f}, "
            f"val BLEU-4 {event.get('val_BLEU-4', float('nan')):.3f}, CIDEr {event.get('val_CIDEr', float('nan')):.3f}"
        )
    return str(event.get("message") or kind)


def _cell(value: float | None) -> str:
    return "    –" if value is None else f"{value:.3f}"


def metrics_table(report: dict[str, Any]) -> str:
    """Active vs new on val and on the held-back corrected photos, with the differences."""
    active, new = report["active_metrics"], report["metrics"]
    lines = [f"{'':<16}{'active':>8}{'new':>8}{'Δ':>8}"]
    for split, label in (("val", "val"), ("feedback_heldout", "held-out")):
        if not new.get(split):
            continue
        for metric in TABLE_METRICS:
            a = (active.get(split) or {}).get(metric)
            n = new[split].get(metric)
            delta = "" if a is None or n is None else f"{n - a:+.3f}"
            lines.append(f"{label + ' ' + metric:<16}{_cell(a):>8}{_cell(n):>8}{delta:>8}")
    return "\n".join(lines)


def _not_trained_on(excluded: dict[str, int]) -> str:
    """A line naming the feedback left out and why (training/feedback_screen.py), or nothing."""
    reasons = [f"{count} {reason.replace('_', ' ')}" for reason, count in excluded.items() if count]
    return f"Not trained on: {', '.join(reasons)}.\n" if reasons else ""


def format_report(report: dict[str, Any]) -> tuple[str, str]:
    """(summary, table): the words of the final report and its fixed-width metrics table."""
    counts = report["data_counts"]
    verdict = (
        f"Passed the gate: {report['version']} is a canary now, captioning {report['canary_fraction']:.0%} of photos "
        f"beside {report['parent_version']} until the ratings decide (/canary shows how it stands)."
        if report["promoted"] and report.get("canary_fraction")
        else f"Promoted: {report['version']} is now the active model (was {report['parent_version']})."
        if report["promoted"]
        else f"Not promoted: {report['version']} stays a candidate; {report['parent_version']} stays active.\n"
        + "\n".join(f"- {reason}" for reason in report["reasons"])
    )
    new_words = counts.get("new_words") or []
    data = (
        f"Data: {counts['flickr8k_train_images']} Flickr8k train photos, {counts['feedback_photos']} feedback photos "
        f"({counts['corrections']} corrections, {counts['upvoted_captions']} 👍 captions, "
        f"{counts['heldout_photos']} corrected photos held back); evaluated on {counts['flickr8k_val_images']} val photos.\n"
        + _not_trained_on(counts.get("excluded") or {})
        + f"Vocabulary: {counts['vocab_size']} words"
        + (f", new: {', '.join(new_words[:15])}{'…' if len(new_words) > 15 else ''}" if new_words else "")
        + f".\nTraining took {report['seconds']['total'] / 60:.1f} min ({report['mode']}, {report['search']})."
    )
    summary = f"Retraining finished: {report['version']}\n{verdict}\n\n{data}"
    return summary, metrics_table(report)
