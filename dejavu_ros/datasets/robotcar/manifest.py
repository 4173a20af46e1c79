"""Manifests (CSV ``path,place,condition,sequence,stamp,x,y``) from posed image records.

A *place* is a stretch of the reference traversal: walking the reference condition's poses in
time order, a new place centre is made whenever the vehicle is at least ``place_spacing_m``
from every existing centre (so revisits reuse places instead of duplicating them); place numbers
therefore run along the route. Every posed record of every condition then takes the nearest
centre, if it is within ``max_distance_m``. Records without a pose cannot be placed and are left
out (counted).

As the training manifests define it, ``sequence`` is the namespace in which place numbers and
x/y are comparable: here the camera (rear, left, right), shared by all conditions, since
different cameras at one position see different scenes. ``x, y`` are the two world axes along
which the reference route spreads most (for a z-up world, x and y): the dataset's frame comes
from a reconstruction whose vertical axis is not guaranteed to be z.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from scipy.spatial import cKDTree

from .errors import RobotCarFormatError
from .seasons import REFERENCE_CONDITION

MANIFEST_COLUMNS = ("path", "place", "condition", "sequence", "stamp", "x", "y")


@dataclass
class ManifestSummary:
    path: Path
    rows: int
    places: int
    without_pose: int
    too_far: int
    per_condition: dict[str, int]


def place_centres(positions: np.ndarray, spacing_m: float) -> np.ndarray:
    """Greedy cover of a time-ordered trajectory with centres ``spacing_m`` apart."""
    centres: list[np.ndarray] = []
    for p in positions:
        if not centres or np.min(np.linalg.norm(np.asarray(centres) - p, axis=1)) >= spacing_m:
            centres.append(p)
    return np.asarray(centres)


def _stamp_us(record: Any) -> int:
    if hasattr(record, "stamp_us"):
        return int(record.stamp_us)
    return int(round(float(record.stamp) * 1e6))


def write_manifest(records: Iterable[Any], out_csv: str | Path, *, place_spacing_m: float = 10.0,
                   reference_condition: str = REFERENCE_CONDITION, max_distance_m: float | None = None
                   ) -> ManifestSummary:
    """Write a manifest for ``records`` (objects with ``path``, ``condition``, ``stamp_us`` or
    ``stamp`` (s), ``pose`` (4x4 camera -> world or None) and optionally ``camera``), e.g.
    :class:`~dejavu_ros.datasets.robotcar.seasons.SeasonsRecord`.

    Paths are written relative to the manifest's folder (absolute when on another drive).
    ``max_distance_m`` defaults to ``place_spacing_m``.
    """
    if place_spacing_m <= 0:
        raise RobotCarFormatError(f"place spacing must be positive, got {place_spacing_m}")
    out_csv = Path(out_csv)
    max_distance = place_spacing_m if max_distance_m is None else max_distance_m
    posed, without_pose = [], 0
    for record in records:
        if record.pose is None:
            without_pose += 1
        else:
            posed.append(record)
    reference = sorted((r for r in posed if r.condition == reference_condition), key=_stamp_us)
    if not reference:
        conditions = sorted({r.condition for r in posed})
        raise RobotCarFormatError(f"no posed records of the reference condition {reference_condition!r} "
                                  f"(posed conditions: {', '.join(conditions) or 'none'})")
    ref_positions = np.array([r.pose[:3, 3] for r in reference])
    centres = place_centres(ref_positions, place_spacing_m)
    tree = cKDTree(centres)
    ax, ay = sorted(np.argsort(ref_positions.var(axis=0))[1:])  # drop the flattest (vertical) axis
    posed.sort(key=lambda r: (r.condition, getattr(r, "camera", ""), _stamp_us(r)))
    distances, places = tree.query(np.array([r.pose[:3, 3] for r in posed]))
    rows, too_far, per_condition = 0, 0, {}
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    with out_csv.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(MANIFEST_COLUMNS)
        for record, distance, place in zip(posed, distances, places):
            if distance > max_distance:
                too_far += 1
                continue
            x, y = record.pose[ax, 3], record.pose[ay, 3]
            writer.writerow([_relative(Path(record.path), out_csv.parent), int(place), record.condition,
                             getattr(record, "camera", "") or "route", f"{_stamp_us(record) * 1e-6:.6f}",
                             f"{x:.3f}", f"{y:.3f}"])
            rows += 1
            per_condition[record.condition] = per_condition.get(record.condition, 0) + 1
    return ManifestSummary(out_csv, rows, len(centres), without_pose, too_far, per_condition)


def _relative(path: Path, folder: Path) -> str:
    try:
        return Path(os.path.relpath(path.resolve(), folder.resolve())).as_posix()
    except ValueError:  # different drive (Windows)
        return path.resolve().as_posix()
