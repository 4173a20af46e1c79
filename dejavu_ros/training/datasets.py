"""Manifest builders for the data layouts at hand, and their held-out validation splits.

Each builder returns (train, validation) record lists; the validation part is a set of places
never shown to the trainer (the end of a route, whole locations or whole webcams), so validation
numbers measure generalisation to unseen places, not memorised ones.
"""
from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from .manifest import IMAGE_SUFFIXES, ImageRecord, ManifestError

Split = tuple[list[ImageRecord], list[ImageRecord]]


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise ManifestError(f"{what}: folder not found: {path}")
    return path


def folder(root: str | Path, sequence: str = "", holdout_fraction: float = 0.0) -> Split:
    """``root/<condition>/<image>``: the same file name in two condition folders is the same place.

    Places are the integer in the file name when every name has one (a route, ordered), else the
    file stem. ``holdout_fraction`` keeps the last places (by that order) for validation.
    """
    root = _require_dir(Path(root), "folder manifest")
    conditions = sorted(p for p in root.iterdir() if p.is_dir())
    if len(conditions) < 2:
        raise ManifestError(f"{root}: expected one sub-folder per condition, found {len(conditions)}")
    files = {c.name: _images(c) for c in conditions}
    stems = {p.stem for paths in files.values() for p in paths}
    numbers = {s: re.findall(r"\d+", s) for s in stems}
    numeric = all(numbers.values())
    records = []
    for cond, paths in files.items():
        for p in paths:
            place = str(int(numbers[p.stem][-1])) if numeric else p.stem
            records.append(ImageRecord(path=str(p.resolve()), place=place, condition=cond,
                                       sequence=sequence or root.name))
    return split_route(records, holdout_fraction)


def nordland(root: str | Path, holdout_fraction: float = 0.2) -> Split:
    """Nordland summer/winter: place = frame index (file number / 10), last places held out."""
    train, val = folder(root, sequence="nordland", holdout_fraction=0.0)
    records = [ImageRecord(path=r.path, place=str(int(r.place) // 10), condition=r.condition,
                           sequence="nordland") for r in train + val]
    return split_route(records, holdout_fraction)


def split_route(records: list[ImageRecord], holdout_fraction: float) -> Split:
    """Hold out the last ``holdout_fraction`` of ordered places of every sequence."""
    if holdout_fraction <= 0:
        return records, []
    held: set[tuple[str, str]] = set()
    by_sequence: dict[str, list[str]] = {}
    for r in records:
        by_sequence.setdefault(r.sequence, []).append(r.place)
    for seq, places in by_sequence.items():
        ordered = sorted(set(places), key=lambda p: (int(p) if p.isdigit() else 0, p))
        cut = len(ordered) - max(1, int(round(holdout_fraction * len(ordered))))
        held |= {(seq, p) for p in ordered[cut:]}
    return ([r for r in records if (r.sequence, r.place) not in held],
            [r for r in records if (r.sequence, r.place) in held])


def grief(root: str | Path, holdout_locations: Sequence[int] = (5,)) -> Split:
    """GRIEF ``<set>_monthly/images/TTLL.jpg``: place = location LL, condition = session TT.

    Every location is its own place (categorical label), so any other location is a negative.
    """
    root = _require_dir(Path(root), "grief manifest")
    sets = sorted(p for p in root.iterdir() if (p / "images").is_dir())
    if not sets:
        raise ManifestError(f"{root}: no '<set>/images' folders (expected e.g. stromovka_monthly/images)")
    train, val = [], []
    for s in sets:
        name = s.name.replace("_monthly", "")
        for p in _images(s / "images"):
            if not re.fullmatch(r"\d{4}", p.stem):
                raise ManifestError(f"{p}: GRIEF image names must be TTLL (4 digits)")
            session, location = int(p.stem[:2]), int(p.stem[2:])
            record = ImageRecord(path=str(p.resolve()), place=f"loc{location:02d}", condition=f"t{session:02d}",
                                 sequence=name, stamp=p.stem)
            (val if location in holdout_locations else train).append(record)
    return train, val


def tilde(root: str | Path, holdout_scenes: Sequence[str] = ("mexico",)) -> Split:
    """TILDE webcams: place = scene (pixel-aligned), condition = brightness tertile in the scene.

    Capture hours are unreliable (undocumented time zones), so the condition is the image's mean
    grey relative to its own scene: "dark", "mid" or "bright" thirds.
    """
    root = _require_dir(Path(root), "tilde manifest")
    listing = root / "manifest.csv"
    if listing.is_file():
        with listing.open(newline="") as handle:
            rows = [(root / row["file"], row["scene"], row["timestamp_or_id"]) for row in csv.DictReader(handle)]
    else:
        rows = [(p, d.name, p.stem) for d in sorted(root.iterdir()) if d.is_dir() for p in _images(d)]
    by_scene: dict[str, list[tuple[Path, str]]] = {}
    for path, scene, stamp in rows:
        by_scene.setdefault(scene, []).append((path, stamp))
    train, val = [], []
    for scene, items in sorted(by_scene.items()):
        grey = []
        for path, _ in items:
            image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if image is None:
                raise ManifestError(f"{path}: unreadable image")
            grey.append(float(image.mean()))
        low, high = np.quantile(grey, [1 / 3, 2 / 3])
        for (path, stamp), g in zip(items, grey):
            cond = "dark" if g < low else ("bright" if g > high else "mid")
            record = ImageRecord(path=str(path.resolve()), place=scene, condition=cond, sequence="tilde",
                                 stamp=stamp, aligned=True)
            (val if scene in holdout_scenes else train).append(record)
    return train, val


def vprbench(root: str | Path) -> Split:
    """VPR-Bench ``<name>/{query,ref}``: place = index in sorted order (ground truth i ↔ ref i)."""
    root = _require_dir(Path(root), "vprbench manifest")
    if (root / "corridor").is_dir() and not (root / "query").is_dir():
        root = root / "corridor"
    records = []
    for cond in ("query", "ref"):
        for i, p in enumerate(_images(_require_dir(root / cond, "vprbench manifest"))):
            records.append(ImageRecord(path=str(p.resolve()), place=str(i), condition=cond, sequence=root.name))
    return records, []


BUILDERS = {"folder": folder, "nordland": nordland, "grief": grief, "tilde": tilde, "vprbench": vprbench}
