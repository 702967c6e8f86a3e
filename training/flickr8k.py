"""Flickr8k in either common layout, with the standard (Hodosh / Karpathy) splits.

Layouts: this project's (`captions.tsv`, `images/`, `splits/Flickr_8k.{train,dev}Images.txt`) and
Kaggle's (`captions.txt` CSV with header `image,caption`, `Images/`, split lists beside it when
present, otherwise the official lists must be given).
"""
from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

SPLIT_FILES = {"train": "Flickr_8k.trainImages.txt", "val": "Flickr_8k.devImages.txt", "test": "Flickr_8k.testImages.txt"}


@dataclass(frozen=True)
class CaptionedImage:
    name: str
    path: Path
    captions: tuple[str, ...]


def _read_captions(root: Path) -> tuple[dict[str, list[str]], Path]:
    captions: dict[str, list[str]] = defaultdict(list)
    if (root / "captions.tsv").exists():
        with open(root / "captions.tsv", encoding="utf-8") as file:
            for line in file:
                name, _, caption = line.rstrip("\n").partition("\t")
                captions[name.split("#")[0]].append(caption)
        return captions, root / "images"
    if (root / "captions.txt").exists():
        with open(root / "captions.txt", encoding="utf-8", newline="") as file:
            for row in csv.DictReader(file):
                captions[row["image"]].append(row["caption"])
        return captions, root / "Images"
    raise FileNotFoundError(f"{root} has neither captions.tsv nor captions.txt")


def _split_names(root: Path, split: str) -> list[str] | None:
    for folder in (root / "splits", root):
        path = folder / SPLIT_FILES[split]
        if path.exists():
            return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return None


def load_flickr8k(root: str | Path, split: str, limit: int | None = None) -> list[CaptionedImage]:
    """Images of one split with all their captions, in the split file's order."""
    root = Path(root)
    captions, image_dir = _read_captions(root)
    names = _split_names(root, split)
    if names is None:
        raise FileNotFoundError(f"no {SPLIT_FILES[split]} under {root} or {root / 'splits'}")
    images = [CaptionedImage(n, image_dir / n, tuple(captions[n])) for n in names if n in captions]
    return images[:limit] if limit else images
