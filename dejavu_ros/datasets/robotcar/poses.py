"""RobotCar pose files: gps/ins.csv (INS solution) and vo/vo.csv (relative visual odometry).

Rows are read lazily (constant memory); malformed rows are reported with file and line and
skipped, so one bad line does not end a conversion.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import RobotCarFormatError
from .geometry import se3_from_xyzrpy
from .problems import ProblemLog

INS_COLUMNS = ("timestamp", "ins_status", "latitude", "longitude", "altitude", "northing", "easting", "down",
               "utm_zone", "velocity_north", "velocity_east", "velocity_down", "roll", "pitch", "yaw")
_INS_FLOATS = INS_COLUMNS[2:8] + INS_COLUMNS[9:]
VO_COLUMNS = ("source_timestamp", "destination_timestamp", "x", "y", "z", "roll", "pitch", "yaw")


@dataclass
class InsRow:
    stamp_us: int
    status: str
    latitude: float
    longitude: float
    altitude: float
    northing: float
    easting: float
    down: float
    utm_zone: str
    velocity_north: float
    velocity_east: float
    velocity_down: float
    roll: float
    pitch: float
    yaw: float
    line: int

    @property
    def ned(self) -> np.ndarray:
        return np.array([self.northing, self.easting, self.down])


def check_csv_header(path: Path, required: tuple[str, ...]) -> dict[str, int]:
    """Column index of each required name; raises naming the file when one is missing."""
    with path.open(newline="") as f:
        first = next(csv.reader(f), None)
    names = [c.strip().lower() for c in (first or [])]
    missing = [c for c in required if c not in names]
    if missing:
        raise RobotCarFormatError(f"{path}:1: header lacks column(s) {', '.join(missing)} "
                                  f"(expected {','.join(required)})")
    return {name: names.index(name) for name in required}


def _csv_rows(path: Path, columns: tuple[str, ...],
              problems: ProblemLog) -> Iterator[tuple[int, list[str], dict[str, int]]]:
    """(line number, row, column index) for every non-blank data row with enough columns; short
    rows are reported and skipped. The header is checked first."""
    index = check_csv_header(path, columns)
    width = max(index.values()) + 1
    with path.open(newline="") as f:
        rows = csv.reader(f)
        next(rows, None)
        for number, row in enumerate(rows, start=2):
            if not row or not "".join(row).strip():
                continue
            if len(row) < width:
                problems.add(path, number, f"expected {len(columns)} columns, got {len(row)}")
                continue
            yield number, row, index


def _stamped_rows(path: Path, columns: tuple[str, ...], stamp_column: str, float_columns: tuple[str, ...],
                  problems: ProblemLog) -> Iterator[tuple[int, list[str], dict[str, int], int, list[float]]]:
    """Rows of :func:`_csv_rows` with an integer stamp that increases and finite float columns:
    (line number, row, column index, stamp, floats). Other rows are reported and skipped."""
    last = None
    for number, row, index in _csv_rows(path, columns, problems):
        try:
            stamp = int(row[index[stamp_column]])
            values = [float(row[index[name]]) for name in float_columns]
        except ValueError as exc:
            problems.add(path, number, f"not a number ({exc})")
            continue
        if not all(math.isfinite(v) for v in values):
            problems.add(path, number, "non-finite value")
            continue
        if last is not None and stamp <= last:
            problems.add(path, number, f"timestamp {stamp} is not after {last}")
            continue
        last = stamp
        yield number, row, index, stamp, values


def check_ins_file(path: Path) -> None:
    """Fail early (before any conversion work) when the file or its header is wrong."""
    if not path.is_file():
        raise RobotCarFormatError(f"INS file not found: {path}")
    check_csv_header(path, INS_COLUMNS)


def read_ins(path: Path, problems: ProblemLog) -> Iterator[InsRow]:
    """INS rows in file order; rows with wrong column counts, non-numbers, non-finite values or
    timestamps that do not increase are reported and skipped."""
    rows = _stamped_rows(path, INS_COLUMNS, "timestamp", _INS_FLOATS, problems)
    for number, row, index, stamp, values in rows:
        yield InsRow(stamp_us=stamp, status=row[index["ins_status"]].strip(),
                     utm_zone=row[index["utm_zone"]].strip(), line=number, **dict(zip(_INS_FLOATS, values)))


@dataclass
class VoPose:
    stamp_us: int
    transform: np.ndarray  # 4x4, the chained pose in the first frame (stereo FRD axes)
    line: int


def read_vo(path: Path, problems: ProblemLog) -> Iterator[VoPose]:
    """Chain relative VO rows as the SDK does: abs = abs_prev · SE3(x y z roll pitch yaw), stamped
    with the row's source timestamp. A skipped row would break the chain, so later poses keep
    going from the last good one (and the skip is reported)."""
    pose = np.eye(4)
    for number, _, _, stamp, motion in _stamped_rows(path, VO_COLUMNS, "source_timestamp", VO_COLUMNS[2:],
                                                     problems):
        pose = pose @ se3_from_xyzrpy(motion)
        yield VoPose(stamp, pose.copy(), number)
