"""The feature cache: every image encoded once per encoder into one float16 NumPy file.

Layout of a cache directory: `names.json` (image names in row order), `grid.npy` (N, H·W, C)
float16, opened as a memory map, and `done.npy` (N,) bool so an interrupted run resumes where it
stopped. New images (feedback photos) are appended by building a new cache that reuses rows.
"""
from __future__ import annotations

import json
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from captioning.encoders import ImageEncoder
from captioning.images import load_image_array, resize_for_encoder


@dataclass
class FeatureCache:
    names: list[str]
    grid: np.ndarray  # (N, H·W, C) float16, possibly a memory map

    def rows(self, names: list[str]) -> np.ndarray:
        index = {name: i for i, name in enumerate(self.names)}
        return np.array([index[name] for name in names], dtype=np.int64)


class ViewEncoder:
    """An encoder that sees each image transformed (another view of a training photo, for
    augmentation) and has a cache of its own, named after the inner encoder and the view."""

    def __init__(self, encoder: ImageEncoder, view_name: str, input_size: int | None = None) -> None:
        self.inner = encoder
        self.spec = encoder.spec
        self.grid_size = encoder.grid_size
        self.input_size = input_size or encoder.input_size  # the size images are loaded at
        self.name = self.weights_id = f"{encoder.weights_id}-{view_name}"  # a fine-tuned top's features are not ImageNet's


class MirroredEncoder(ViewEncoder):
    """Every image mirrored left to right (a mirrored photo keeps its captions; "left" and "right"
    are rare)."""

    def __init__(self, encoder: ImageEncoder) -> None:
        super().__init__(encoder, "mirrored")

    def encode(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.inner.encode(np.ascontiguousarray(images[:, :, ::-1]))


class CroppedEncoder(ViewEncoder):
    """A random crop of every image (70-90 % of each side, anywhere in the photo, mirrored half of
    the time), scaled back to the encoder's input. Photos are loaded larger than the encoder's
    input so that a crop is scaled up by little. The crop of an image follows from its pixels and
    the view number alone, so a resumed or rebuilt cache holds the same crops."""

    LOAD_SCALE = 1.25  # load at 1.25× the input size: an 80 % crop is then the input size

    def __init__(self, encoder: ImageEncoder, view: int, scale: tuple[float, float] = (0.7, 0.9)) -> None:
        super().__init__(encoder, f"crop{view}", round(encoder.input_size * self.LOAD_SCALE))
        self.view = view
        self.scale = scale

    def crop(self, image: np.ndarray) -> np.ndarray:
        """One photo's crop for this view, (input, input, 3) uint8."""
        rng = np.random.default_rng([self.view, zlib.crc32(image.tobytes())])
        height, width = image.shape[:2]
        h, w = (round(side * rng.uniform(*self.scale)) for side in (height, width))
        top, left = rng.integers(0, height - h + 1), rng.integers(0, width - w + 1)
        patch = image[top : top + h, left : left + w]
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        return resize_for_encoder(Image.fromarray(np.ascontiguousarray(patch)), self.inner.input_size)

    def encode(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.inner.encode(np.stack([self.crop(image) for image in images]))


def cache_dir_for(root: Path, encoder_name: str) -> Path:
    return Path(root) / encoder_name


def build_feature_cache(
    encoder: ImageEncoder | ViewEncoder,
    images: dict[str, Path],
    cache_dir: Path,
    batch_size: int = 32,
    progress: bool = True,
) -> FeatureCache:
    """Encode `images` (name → path) that the cache lacks; resumable; returns the whole cache."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    names_path, grid_path, done_path = cache_dir / "names.json", cache_dir / "grid.npy", cache_dir / "done.npy"
    old_names = json.loads(names_path.read_text()) if names_path.exists() and grid_path.exists() else []
    names = sorted(set(images) | set(old_names))  # a cache only grows: asking for a subset re-encodes nothing
    if names == old_names:
        grid = np.load(grid_path, mmap_mode="r+")
        done = np.load(done_path)
    else:
        grid, done = _grown_cache(encoder, cache_dir, old_names, names)
    missing = [n for n, d in zip(names, done) if not d and n not in images]
    if missing:
        raise FileNotFoundError(f"{len(missing)} cached names have no image path, e.g. {missing[0]}")
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


def _grown_cache(encoder: ImageEncoder | ViewEncoder, cache_dir: Path, old_names: list[str], names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """A new cache file holding `names`, with the rows of `old_names` copied over (marked done)."""
    cells = encoder.grid_size[0] * encoder.grid_size[1]
    tmp_path = cache_dir / "grid.tmp.npy"
    grid = np.lib.format.open_memmap(tmp_path, mode="w+", dtype=np.float16, shape=(len(names), cells, encoder.spec.channels))
    done = np.zeros(len(names), dtype=bool)
    if old_names:
        old_grid, old_done = np.load(cache_dir / "grid.npy", mmap_mode="r"), np.load(cache_dir / "done.npy")
        position = {name: i for i, name in enumerate(names)}
        for old_row, name in enumerate(old_names):
            grid[position[name]] = old_grid[old_row]
            done[position[name]] = old_done[old_row]
        del old_grid
    grid.flush()
    tmp_path.replace(cache_dir / "grid.npy")
    np.save(cache_dir / "done.npy", done)
    (cache_dir / "names.json").write_text(json.dumps(names))
    return np.load(cache_dir / "grid.npy", mmap_mode="r+"), done


def load_feature_cache(cache_dir: Path) -> FeatureCache:
    cache_dir = Path(cache_dir)
    done = np.load(cache_dir / "done.npy")
    if not done.all():
        raise RuntimeError(f"{cache_dir} is incomplete ({done.sum()}/{done.size}); run the feature cache again")
    return FeatureCache(json.loads((cache_dir / "names.json").read_text()), np.load(cache_dir / "grid.npy", mmap_mode="r"))
