"""RobotCar Seasons reader: images/<condition>/<camera>/<timestamp>.jpg plus calibration and poses.

Layout (the official README; see the project's data notes): ``intrinsics/<camera>_intrinsics.txt``
(``fx v`` / ``fy v`` / ``cx v`` / ``cy v``), ``extrinsics/<camera>_extrinsics.txt`` (a 4x4
camera -> car matrix, comma separated) and, where present, ``robotcar_v2_train.txt``: an image
name followed by a row-major 3x4 or 4x4 camera -> world matrix. Images are undistorted pinhole.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np

from ...geometry import CameraIntrinsics
from .errors import RobotCarFormatError
from .problems import ProblemLog

CAMERAS = ("left", "rear", "right")
POSE_FILES = ("robotcar_v2_train.txt",)
REFERENCE_CONDITION = "overcast-reference"


@dataclass
class SeasonsRecord:
    path: Path
    condition: str
    camera: str
    stamp_us: int
    pose: np.ndarray | None  # 4x4 camera -> world (world = the dataset's reconstruction frame)
    intrinsics: CameraIntrinsics
    extrinsics: np.ndarray | None  # 4x4 camera -> car

    @property
    def name(self) -> str:
        """``condition/camera/<timestamp>.jpg``, the key the dataset's text files use."""
        return f"{self.condition}/{self.camera}/{self.path.name}"

    @property
    def stamp(self) -> float:
        return self.stamp_us * 1e-6

    @property
    def position(self) -> np.ndarray | None:
        return None if self.pose is None else self.pose[:3, 3]

    def load_rgb(self) -> np.ndarray:
        """HxWx3 uint8 RGB."""
        image = cv2.imread(str(self.path), cv2.IMREAD_COLOR)
        if image is None:
            raise RobotCarFormatError(f"cannot read image {self.path}")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _normalise_name(name: str) -> str:
    name = name.strip().replace("\\", "/")
    for prefix in ("./", "images/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    return name


def read_intrinsics_file(path: Path) -> tuple[float, float, float, float]:
    values: dict[str, float] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        parts = [p for p in re.split(r"[\s:=,]+", line.strip()) if p]
        if not parts:
            continue
        try:
            values[parts[0].lower()] = float(parts[1])
        except (IndexError, ValueError):
            raise RobotCarFormatError(f"{path}:{number}: expected '<name> <value>', "
                                      f"got {line.strip()!r}") from None
    missing = [k for k in ("fx", "fy", "cx", "cy") if k not in values]
    if missing:
        raise RobotCarFormatError(f"{path}: missing {', '.join(missing)}")
    return values["fx"], values["fy"], values["cx"], values["cy"]


def read_matrix_file(path: Path) -> np.ndarray:
    try:
        numbers = [float(v) for v in re.split(r"[\s,]+", path.read_text().strip()) if v]
    except ValueError:
        raise RobotCarFormatError(f"{path}: expected a 4x4 matrix of numbers") from None
    if len(numbers) != 16:
        raise RobotCarFormatError(f"{path}: expected 16 numbers (4x4), got {len(numbers)}")
    return np.array(numbers).reshape(4, 4)


def read_pose_file(path: Path, problems: ProblemLog) -> dict[str, np.ndarray]:
    """``name m00 m01 ... m23 [m30 ... m33]`` lines -> {name: 4x4 camera -> world}."""
    poses: dict[str, np.ndarray] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        try:
            numbers = [float(v) for v in parts[1:]]
        except ValueError:
            problems.add(path, number, "non-numeric pose values")
            continue
        if len(numbers) not in (12, 16) or not np.all(np.isfinite(numbers)):
            problems.add(path, number, f"expected 12 or 16 finite numbers after the name, got {len(numbers)}")
            continue
        matrix = np.eye(4)
        matrix[:3] = np.array(numbers[:12]).reshape(3, 4)
        poses[_normalise_name(parts[0])] = matrix
    return poses


class SeasonsDataset:
    """A RobotCar Seasons root folder (the one holding ``images/``)."""

    def __init__(self, root: str | Path, pose_file: str | Path | None = None):
        self.root = Path(root)
        self.images_dir = self.root / "images"
        if not self.images_dir.is_dir():
            raise RobotCarFormatError(f"not a RobotCar Seasons folder: {self.images_dir} does not exist")
        self.problems = ProblemLog()
        self._pose_file = Path(pose_file) if pose_file else next(
            (self.root / f for f in POSE_FILES if (self.root / f).is_file()), None)
        if pose_file and not self._pose_file.is_file():
            raise RobotCarFormatError(f"pose file not found: {pose_file}")
        self._intrinsics: dict[str, CameraIntrinsics] = {}

    @property
    def conditions(self) -> list[str]:
        return sorted(p.name for p in self.images_dir.iterdir() if p.is_dir())

    def cameras(self, condition: str) -> list[str]:
        folder = self.images_dir / condition
        return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []

    @cached_property
    def poses(self) -> dict[str, np.ndarray]:
        return read_pose_file(self._pose_file, self.problems) if self._pose_file else {}

    def intrinsics(self, camera: str, sample_image: Path | None = None) -> CameraIntrinsics:
        """Pinhole intrinsics; the image size is read from one image of that camera."""
        if camera not in self._intrinsics:
            path = self.root / "intrinsics" / f"{camera}_intrinsics.txt"
            if not path.is_file():
                raise RobotCarFormatError(f"intrinsics file not found: {path}")
            fx, fy, cx, cy = read_intrinsics_file(path)
            size = None
            if sample_image is not None:
                image = cv2.imread(str(sample_image), cv2.IMREAD_UNCHANGED)
                size = None if image is None else (image.shape[1], image.shape[0])
            if size is None:
                raise RobotCarFormatError(f"cannot read image {sample_image} to learn the {camera} "
                                          "image size")
            self._intrinsics[camera] = CameraIntrinsics.from_fxfycxcy(fx, fy, cx, cy, *size, frame_id=camera)
        return self._intrinsics[camera]

    def extrinsics(self, camera: str) -> np.ndarray | None:
        path = self.root / "extrinsics" / f"{camera}_extrinsics.txt"
        return read_matrix_file(path) if path.is_file() else None

    def records(self, conditions: Iterable[str] | None = None, cameras: Iterable[str] | None = None,
                with_pose_only: bool = False) -> Iterator[SeasonsRecord]:
        """Records sorted by condition, camera and timestamp; unknown conditions are an error."""
        available = self.conditions
        wanted = list(conditions) if conditions is not None else available
        unknown = [c for c in wanted if c not in available]
        if unknown:
            raise RobotCarFormatError(f"{self.images_dir} has no condition {', '.join(unknown)}; "
                                      f"available: {', '.join(available)}")
        for condition in wanted:
            for camera in self.cameras(condition):
                if cameras is not None and camera not in cameras:
                    continue
                yield from self._camera_records(condition, camera, with_pose_only)

    def _camera_records(self, condition: str, camera: str, with_pose_only: bool) -> Iterator[SeasonsRecord]:
        files = []
        for path in (self.images_dir / condition / camera).glob("*.jpg"):
            try:
                files.append((int(path.stem), path))
            except ValueError:
                self.problems.add(path, None, "file name is not a timestamp")
        if not files:
            return
        files.sort()
        intr = self.intrinsics(camera, files[0][1])
        extr = self.extrinsics(camera)
        for stamp, path in files:
            pose = self.poses.get(f"{condition}/{camera}/{path.name}")
            if pose is None and with_pose_only:
                continue
            yield SeasonsRecord(path=path, condition=condition, camera=camera, stamp_us=stamp, pose=pose,
                                intrinsics=intr, extrinsics=extr)
