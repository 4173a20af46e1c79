"""Image manifests: which image shows which place under which condition.

A manifest is a CSV with the header ``path,place,condition`` and the optional columns
``sequence,stamp,x,y,aligned,crop``. ``path`` is absolute or relative to the manifest's folder.
``place`` is a label: integers within one ``sequence`` are ordered along a route (neighbours are
consecutive frames, "k places away" is a distance), other labels are categorical. ``x, y`` (metres)
replace place indices for distances when present. ``aligned = 1`` marks sequences whose images of
one place are pixel-aligned (fixed webcams), which the optional spatial loss relies on. ``crop``
("x0 y0 x1 y1", fractions of the width and height) makes the record a part of its image: one
webcam frame cut into regions gives several places of one view, the hard negatives of a fixed
camera (which otherwise has a single place).

Training and evaluation both read manifests, so one file describes a data set for both.
"""
from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import DejavuError
from ..io.errors import ImageDecodeError
from ..io.images import read_rgb

REQUIRED = ("path", "place", "condition")
OPTIONAL = ("sequence", "stamp", "x", "y", "aligned", "crop")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff"}


class ManifestError(DejavuError):
    """A manifest that cannot be used; the message names the file and row at fault."""


@dataclass(frozen=True)
class ImageRecord:
    """One image of the manifest (``path`` is resolved to an absolute path on reading)."""

    path: str
    place: str
    condition: str
    sequence: str = ""
    stamp: str = ""
    x: float = math.nan
    y: float = math.nan
    aligned: bool = False
    crop: tuple[float, float, float, float] | None = None  # x0, y0, x1, y1 as fractions of the image

    @property
    def place_index(self) -> int | None:
        """The place as an integer when it is one (a position along a route), else None."""
        try:
            return int(self.place)
        except ValueError:
            return None

    @property
    def has_position(self) -> bool:
        return not (math.isnan(self.x) or math.isnan(self.y))


def place_distance(a: ImageRecord, b: ImageRecord) -> float:
    """How far apart two places are: metres if both have x/y, index steps on one route,
    +inf across sequences or between different categorical labels (0 for the same label)."""
    if a.sequence != b.sequence:
        return math.inf
    if a.has_position and b.has_position:
        return math.hypot(a.x - b.x, a.y - b.y)
    ia, ib = a.place_index, b.place_index
    if ia is not None and ib is not None:
        return float(abs(ia - ib))
    return 0.0 if a.place == b.place else math.inf


def read_manifest(path: str | Path, check_files: bool = True, min_conditions: int = 2) -> list[ImageRecord]:
    """Read and check a manifest; relative paths are resolved against its folder."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest not found: {path}")
    base = path.resolve().parent
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise ManifestError(f"{path}: header lacks column(s) {', '.join(missing)} "
                                f"(expected {','.join(REQUIRED)}[,{','.join(OPTIONAL)}])")
        records = [_parse_row(row, base, path, line) for line, row in enumerate(reader, start=2)]
    if not records:
        raise ManifestError(f"{path}: no images listed")
    if check_files:
        absent = [r.path for r in records if not os.path.isfile(r.path)]
        if absent:
            raise ManifestError(f"{path}: {len(absent)} listed image(s) do not exist, first: {absent[0]}")
    conditions = sorted({r.condition for r in records})
    if len(conditions) < min_conditions:
        raise ManifestError(f"{path}: needs at least {min_conditions} conditions, found {len(conditions)} "
                            f"({', '.join(conditions)})")
    return records


def _parse_row(row: dict, base: Path, path: Path, line: int) -> ImageRecord:
    for column in REQUIRED:
        if not (row.get(column) or "").strip():
            raise ManifestError(f"{path}:{line}: empty '{column}'")
    image = Path(row["path"].strip())
    if not image.is_absolute():
        image = base / image
    try:
        x = float(row["x"]) if (row.get("x") or "").strip() else math.nan
        y = float(row["y"]) if (row.get("y") or "").strip() else math.nan
    except ValueError:
        raise ManifestError(f"{path}:{line}: x/y must be numbers, got {row.get('x')!r}, {row.get('y')!r}") from None
    aligned = (row.get("aligned") or "").strip().lower() in ("1", "true", "yes")
    crop = _parse_crop((row.get("crop") or "").strip(), f"{path}:{line}")
    return ImageRecord(path=os.path.normpath(str(image)), place=row["place"].strip(), condition=row["condition"].strip(),
                       sequence=(row.get("sequence") or "").strip(), stamp=(row.get("stamp") or "").strip(),
                       x=x, y=y, aligned=aligned, crop=crop)


def _parse_crop(text: str, where: str) -> tuple[float, float, float, float] | None:
    if not text:
        return None
    try:
        x0, y0, x1, y1 = (float(v) for v in text.split())
    except ValueError:
        raise ManifestError(f"{where}: crop must be four numbers 'x0 y0 x1 y1', got {text!r}") from None
    if not (0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0):
        raise ManifestError(f"{where}: crop {text!r} must satisfy 0 ≤ x0 < x1 ≤ 1 and 0 ≤ y0 < y1 ≤ 1")
    return (x0, y0, x1, y1)


def load_rgb(path: str) -> np.ndarray:
    """Image file → H×W×3 uint8 RGB (grey files are replicated); the error names the file."""
    try:
        return read_rgb(path)
    except ImageDecodeError as exc:
        raise ManifestError(str(exc)) from None


def load_record(record: ImageRecord) -> np.ndarray:
    """The record's pixels: its image, cut to ``crop`` when it has one."""
    image = load_rgb(record.path)
    if record.crop is None:
        return image
    h, w = image.shape[:2]
    x0, y0, x1, y1 = record.crop
    return np.ascontiguousarray(image[int(round(y0 * h)):max(int(round(y1 * h)), int(round(y0 * h)) + 1),
                                      int(round(x0 * w)):max(int(round(x1 * w)), int(round(x0 * w)) + 1)])


def write_manifest(records: Iterable[ImageRecord], path: str | Path, relative: bool = True) -> Path:
    """Write records; paths become relative to the manifest's folder when ``relative``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    base = path.resolve().parent
    names = [f.name for f in fields(ImageRecord)]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        for r in records:
            image = os.path.relpath(r.path, base) if relative else r.path
            writer.writerow([image, r.place, r.condition, r.sequence, r.stamp,
                             "" if math.isnan(r.x) else r.x, "" if math.isnan(r.y) else r.y,
                             1 if r.aligned else 0, "" if r.crop is None else " ".join(f"{v:g}" for v in r.crop)])
    return path


def read_many(paths: Sequence[str | Path], check_files: bool = True, min_conditions: int = 2) -> list[ImageRecord]:
    """Concatenate several manifests (each checked on its own, then the union)."""
    records: list[ImageRecord] = []
    for p in paths:
        records.extend(read_manifest(p, check_files, min_conditions=1))
    conditions = {r.condition for r in records}
    if len(conditions) < min_conditions:
        raise ManifestError(f"{', '.join(map(str, paths))}: needs at least {min_conditions} conditions, "
                            f"found {sorted(conditions)}")
    return records
