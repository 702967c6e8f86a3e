"""The attention map: the photo once per word, with where the decoder looked for that word laid over it.

One drawing for everyone who shows it: `captionbot caption --attention`, `captionbot evaluate` and
the worker's reply to 🔍 under a caption. matplotlib is imported when a map is drawn, not with the
library, and through its object interface (no pyplot state), so a worker can draw in any thread.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

COLUMNS = 5


def attention_png(image: np.ndarray, words: list[str], attention: np.ndarray, grid_size: tuple[int, int]) -> bytes:
    """PNG bytes: `image` (uint8 H×W×3) first, then one panel per word with its weights
    ((len(words), grid_h · grid_w)) upsampled smoothly over the image."""
    from matplotlib.figure import Figure

    rows = (len(words) + 1 + COLUMNS - 1) // COLUMNS
    figure = Figure(figsize=(COLUMNS * 2.4, rows * 2.6))
    axes = np.atleast_1d(figure.subplots(rows, COLUMNS)).reshape(-1)
    axes[0].imshow(image)
    axes[0].set_title("image", fontsize=9)
    height, width = image.shape[:2]
    for ax, word, weights in zip(axes[1:], words, attention):
        heat = Image.fromarray((weights.reshape(grid_size) / max(weights.max(), 1e-8) * 255).astype(np.uint8))
        ax.imshow(image)
        ax.imshow(np.asarray(heat.resize((width, height), Image.Resampling.BICUBIC)), cmap="jet", alpha=0.45)
        ax.set_title(word, fontsize=10)
    for ax in axes:
        ax.axis("off")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


def write_attention_png(image: np.ndarray, words: list[str], attention: np.ndarray, grid_size: tuple[int, int], path: Path) -> Path:
    """`attention_png`, written to `path`."""
    Path(path).write_bytes(attention_png(image, words, attention, grid_size))
    return Path(path)
