"""Plots people would rather look at than numbers: training curves, a gallery, feedback per version
(attention maps: captioning/attention_map.py)."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_training_curves(history: list[dict], path: Path) -> Path:
    """Loss (cross-entropy, or −reward in SCST) and val greedy BLEU-4 / CIDEr per epoch."""
    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(11, 4))
    for stage, marker in (("xe", "o"), ("scst", "s")):
        points = [(h["epoch"], h["loss"]) for h in history if h["stage"] == stage]
        if points:
            ax_loss.plot(*zip(*points), marker=marker, label="cross-entropy" if stage == "xe" else "SCST −reward")
    ax_loss.set(xlabel="epoch", ylabel="train loss", title="training loss")
    ax_loss.legend()
    ax_val.plot(epochs, [h["val_BLEU-4"] for h in history], marker="o", label="val BLEU-4")
    ax_val.plot(epochs, [h["val_CIDEr"] for h in history], marker="s", label="val CIDEr-D")
    ax_val.set(xlabel="epoch", title="val (greedy)")
    ax_val.legend()
    return _save_charts(fig, (ax_loss, ax_val), path, dpi=110)


def _save_charts(fig, axes, path: Path, dpi: int) -> Path:
    """Light grids on every chart, then the figure written and closed (pyplot keeps open ones alive)."""
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return Path(path)


def _save_image_grid(fig, axes, path: Path) -> Path:
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def plot_gallery(samples: list[dict], path: Path, columns: int = 3) -> Path:
    """Images with the generated caption (bold) and two references under each."""
    import textwrap

    rows = (len(samples) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 4.2, rows * 4.6))
    axes = np.atleast_1d(axes).reshape(-1)
    for ax, sample in zip(axes, samples):
        ax.imshow(sample["image"])
        refs = "\n".join(textwrap.fill("ref: " + r, 48) for r in sample["references"][:2])
        ax.set_title(textwrap.fill(sample["caption"], 40), fontsize=10, fontweight="bold")
        ax.text(0, 1.0, refs, transform=ax.transAxes, fontsize=7, va="top", ha="left", color="white",
                bbox={"facecolor": "black", "alpha": 0.55, "pad": 2})
    return _save_image_grid(fig, axes, path)


def plot_version_feedback(shares: list[tuple[str, float, tuple[float, float]]],
                          over_time: dict[str, list[tuple[datetime, float]]], period: str, path: Path) -> Path:
    """👍 share per version with its 95 % Wilson interval as error bars, and the share per `period`
    (day or week), one line per version. `shares` holds (version, share, (low, high)), rated versions only."""
    fig, (ax_versions, ax_time) = plt.subplots(1, 2, figsize=(12, 4.5))
    if shares:
        names = [name for name, _, _ in shares]
        values = np.array([share for _, share, _ in shares])
        low = values - np.array([interval[0] for _, _, interval in shares])
        high = np.array([interval[1] for _, _, interval in shares]) - values
        ax_versions.errorbar(range(len(names)), values, yerr=[low, high], fmt="o", capsize=5)
        ax_versions.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
        ax_versions.set_xlim(-0.5, len(names) - 0.5)
    # DejaVu Sans, matplotlib's font, has no 👍 glyph.
    ax_versions.set(ylim=(0, 1), ylabel="thumbs-up share of ratings", title="thumbs-up share per version (95 % Wilson interval)")
    for version, points in over_time.items():
        if points:
            ax_time.plot(*zip(*points), marker="o", label=version)
    starts = sorted({start for points in over_time.values() for start, _ in points})
    if starts:
        ax_time.legend(fontsize=8)
        ax_time.set_xticks(starts[:: max(1, len(starts) // 12)])  # one tick per day or week, at most 12
        ax_time.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
    ax_time.set(ylim=(0, 1), ylabel="thumbs-up share of ratings", title=f"thumbs-up share per {period} the caption was served")
    ax_time.tick_params(axis="x", labelrotation=30, labelsize=8)
    return _save_charts(fig, (ax_versions, ax_time), path, dpi=100)
