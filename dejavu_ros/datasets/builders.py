"""Manifest builders for the data layouts at hand, and their held-out validation splits.

Each builder returns (train, validation) record lists; the validation part is a set of places
never shown to the trainer (a segment of a route with a gap on both sides, whole locations, whole
webcams or whole days of one), so validation numbers measure generalisation to unseen places,
not memorised ones. A split right next to the training places flatters: neighbouring frames of a
route look alike, and a model that memorised its segment scores well on the frames beside it.
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


def nordland(root: str | Path, holdout_fraction: float = 0.2, segment: tuple[int, int] | None = None,
             gap: int = 0) -> Split:
    """Nordland summer/winter: place = frame index (file number / 10).

    ``segment`` (first, last place, inclusive) holds out a contiguous stretch of the route and drops
    ``gap`` places on each side of it from both sets; without it the last ``holdout_fraction`` of
    the places is held out (with the gap before it).
    """
    train, val = folder(root, sequence="nordland", holdout_fraction=0.0)
    records = [ImageRecord(path=r.path, place=str(int(r.place) // 10), condition=r.condition,
                           sequence="nordland") for r in train + val]
    if segment is None:
        places = sorted({int(r.place) for r in records})
        if holdout_fraction <= 0:
            return records, []
        first = places[len(places) - max(1, int(round(holdout_fraction * len(places))))]
        segment = (first, places[-1])
    return split_segment(records, segment, gap)


def split_segment(records: list[ImageRecord], segment: tuple[int, int], gap: int = 0) -> Split:
    """Places ``segment[0]..segment[1]`` of every route for validation, ``gap`` places around it for neither."""
    first, last = int(segment[0]), int(segment[1])
    if first > last or gap < 0:
        raise ManifestError(f"hold-out segment {first}-{last} with gap {gap}: expected first ≤ last and gap ≥ 0")
    train, val = [], []
    for r in records:
        index = r.place_index
        if index is None:
            raise ManifestError(f"{r.path}: place {r.place!r} is not a route index; a segment split needs one")
        if first <= index <= last:
            val.append(r)
        elif not first - gap <= index <= last + gap:
            train.append(r)
    if not val:
        raise ManifestError(f"hold-out segment {first}-{last}: no places of the route lie in it")
    return train, val


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


def tilde(root: str | Path, holdout_scenes: Sequence[str] = ("mexico",), regions: tuple[int, int] = (1, 1)) -> Split:
    """TILDE webcams: place = scene (pixel-aligned), condition = brightness tertile in the scene.

    Capture hours are unreliable (undocumented time zones), so the condition is the image's mean
    grey relative to its own scene: "dark", "mid" or "bright" thirds. ``regions`` (rows, columns)
    cuts every frame into that many places (see :func:`webcam_regions`).
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
    return webcam_regions(train, regions), webcam_regions(val, regions)


#: oxblue_webcam: the days (UTC dates) held out for validation, and the day between them and training
OXBLUE_HOLDOUT_DAYS = ("2023-06-23", "2023-06-24", "2023-06-25")
OXBLUE_GAP_DAYS = ("2023-06-22",)


def oxblue(root: str | Path, holdout_days: Sequence[str] = OXBLUE_HOLDOUT_DAYS,
           gap_days: Sequence[str] = OXBLUE_GAP_DAYS, regions: tuple[int, int] = (2, 2)) -> Split:
    """OxBlue construction-site webcam: one fixed camera over 13 days and nights.

    ``index.csv`` gives each frame's capture time and a day / twilight / night label (the
    condition). Whole days are held out (``holdout_days``; ``gap_days`` go to neither set), so the
    validation frames show a later stage of the construction than any training frame. The frame
    is cut into ``regions`` places: a single camera has a single place, and the regions are its
    hard negatives (same light, same kind of scene, another place).
    """
    root = _require_dir(Path(root), "oxblue manifest")
    listing = root / "index.csv"
    if not listing.is_file():
        raise ManifestError(f"{root}: no index.csv (expected path,utc,local_hour,mean_luma,condition)")
    with listing.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"path", "utc", "condition"} - set(reader.fieldnames or [])
        if missing:
            raise ManifestError(f"{listing}: header lacks column(s) {', '.join(sorted(missing))}")
        rows = list(reader)
    train, val = [], []
    for line, row in enumerate(rows, start=2):
        day = row["utc"][:10]
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", day) or not row["condition"]:
            raise ManifestError(f"{listing}:{line}: expected an ISO utc time and a condition, got "
                                f"{row['utc']!r}, {row['condition']!r}")
        if day in gap_days:
            continue
        record = ImageRecord(path=str((root / row["path"]).resolve()), place="oxblue", condition=row["condition"],
                             sequence="oxblue", stamp=row["utc"], aligned=True)
        (val if day in holdout_days else train).append(record)
    return webcam_regions(train, regions), webcam_regions(val, regions)


def webcam_regions(records: list[ImageRecord], regions: tuple[int, int]) -> list[ImageRecord]:
    """Cut every frame of pixel-aligned records into rows × columns regions, each its own place.

    A fixed camera shows one place; its regions are places that share the light, the weather and
    the kind of scene, so they are the hardest negatives one can have with exact ground truth
    (region k of a night frame is region k of a day frame, pixel for pixel).
    """
    rows, cols = (int(v) for v in regions)
    if rows < 1 or cols < 1:
        raise ManifestError(f"regions must be at least 1x1, got {rows}x{cols}")
    if rows == cols == 1:
        return list(records)
    out = []
    for r in records:
        for i in range(rows):
            for j in range(cols):
                out.append(ImageRecord(path=r.path, place=f"{r.place}/r{i}{j}", condition=r.condition,
                                       sequence=r.sequence, stamp=r.stamp, aligned=r.aligned,
                                       crop=(j / cols, i / rows, (j + 1) / cols, (i + 1) / rows)))
    return out


def keep_conditions(records: list[ImageRecord], conditions: Sequence[str]) -> list[ImageRecord]:
    """Only the records of ``conditions`` (e.g. night and day for a night↔day validation set)."""
    wanted = set(conditions)
    unknown = wanted - {r.condition for r in records}
    if unknown:
        raise ManifestError(f"condition(s) {', '.join(sorted(unknown))} not in the data set "
                            f"(it has {', '.join(sorted({r.condition for r in records}))})")
    return [r for r in records if r.condition in wanted]


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


BUILDERS = {"folder": folder, "nordland": nordland, "grief": grief, "tilde": tilde, "oxblue": oxblue,
            "vprbench": vprbench}
