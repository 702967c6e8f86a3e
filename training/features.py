"""The feature cache: every image encoded once per encoder into one float16 NumPy file.

Layout of a cache directory: `names.json` (image names in row order), `grid.npy` (N, H·W, C)
float16, opened as a memory map, and `done.npy` (N,) bool so an interrupted run resumes where it
stopped. New images (feedback photos) are appended by building a new cache that reuses rows.
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from captioning.encoders import ImageEncoder
from captioning.images import load_image_array


@dataclass
class FeatureCache:
    names: list[str]
    grid: np.ndarray  # (N, H·W, C) float16, possibly a memory map

    def rows(self, names: list[str]) -> np.ndarray:
        index = {name: i for i, name in enumerate(self.names)}
        return np.array([index[name] for name in names], dtype=np.int64)


def cache_dir_for(root: Path, encoder_name: str) -> Path:
    return Path(root) / encoder_name


def build_feature_cache(
    encoder: ImageEncoder,
    images: dict[str, Path],
    cache_dir: Path,
    batch_size: int = 32,
    progress: bool = True,
) -> FeatureCache:
    """Encode `images` (name → path) that the cache lacks; resumable; returns the whole cache."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    names = sorted(images)
    names_path, grid_path, done_path = cache_dir / "names.json", cache_dir / "grid.npy", cache_dir / "done.npy"
    if names_path.exists() and json.loads(names_path.read_text()) == names and grid_path.exists():
        grid = np.load(grid_path, mmap_mode="r+")
        done = np.load(done_path)
    else:
        cells = encoder.grid_size[0] * encoder.grid_size[1]
        grid = np.lib.format.open_memmap(grid_path, mode="w+", dtype=np.float16, shape=(len(names), cells, encoder.spec.channels))
        done = np.zeros(len(names), dtype=bool)
        names_path.write_text(json.dumps(names))
    todo = np.flatnonzero(~done)
    batches = [todo[i : i + batch_size] for i in range(0, len(todo), batch_size)]
    load = lambda i: load_image_array(images[names[i]], encoder.input_size)  # noqa: E731
    with ThreadPoolExecutor(max_workers=2) as pool, tqdm(
        total=len(names), initial=len(names) - len(todo), desc=f"features {encoder.name}", unit="img", disable=not progress
    ) as bar:
        pending = pool.map(lambda rows: np.stack([load(i) for i in rows]), batches)
        for step, (rows, pixels) in enumerate(zip(batches, pending)):
            grid[rows] = encoder.encode(pixels)[0].astype(np.float16)
            done[rows] = True
            bar.update(len(rows))
            if step % 20 == 0:
                grid.flush()
                np.save(done_path, done)
    grid.flush()
    np.save(done_path, done)
    return FeatureCache(names, np.load(grid_path, mmap_mode="r"))


def load_feature_cache(cache_dir: Path) -> FeatureCache:
    cache_dir = Path(cache_dir)
    done = np.load(cache_dir / "done.npy")
    if not done.all():
        raise RuntimeError(f"{cache_dir} is incomplete ({done.sum()}/{done.size}); run the feature cache again")
    return FeatureCache(json.loads((cache_dir / "names.json").read_text()), np.load(cache_dir / "grid.npy", mmap_mode="r"))
