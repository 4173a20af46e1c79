"""Where things are in a raw Oxford RobotCar run folder, and how its small text files read.

Facts (image folders, timestamps files, Bayer patterns, camera-model names) follow the RobotCar
SDK; see the project's data notes (FORMAT.md) for the sources.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import yaml

from .errors import RobotCarFormatError
from .problems import ProblemLog


@dataclass(frozen=True)
class CameraSpec:
    name: str  # as on the command line, e.g. "stereo/centre"
    image_dir: str  # relative to the run folder
    timestamps: str  # relative to the run folder
    model: str  # camera model file stem in the SDK's models/ folder
    bayer: str  # OpenCV-independent pattern name: "gbrg" (stereo) or "rggb" (mono)
    extrinsics: str  # extrinsics file stem in the SDK's extrinsics/ folder
    extrinsics_inverted: bool  # mono_*.txt hold stereo-in-camera, not camera-in-stereo
    ros_name: str  # used in topic and frame names

    @property
    def optical_frame(self) -> str:
        return f"{self.ros_name}_optical"


def _stereo(side: str, model: str) -> CameraSpec:
    return CameraSpec(f"stereo/{side}", f"stereo/{side}", "stereo.timestamps", model, "gbrg", "stereo",
                      False, f"stereo_{side}")


def _mono(name: str) -> CameraSpec:
    return CameraSpec(name, name, f"{name}.timestamps", name, "rggb", name, True, name)


CAMERAS: dict[str, CameraSpec] = {
    "stereo/centre": _stereo("centre", "stereo_narrow_left"),
    "stereo/left": _stereo("left", "stereo_wide_left"),
    "stereo/right": _stereo("right", "stereo_wide_right"),
    "mono_left": _mono("mono_left"),
    "mono_right": _mono("mono_right"),
    "mono_rear": _mono("mono_rear"),
}


def camera_spec(name: str) -> CameraSpec:
    try:
        return CAMERAS[name]
    except KeyError:
        raise RobotCarFormatError(f"unknown RobotCar camera {name!r}; expected one of "
                                  f"{', '.join(CAMERAS)}") from None


@dataclass(frozen=True)
class FrameEntry:
    stamp_us: int
    chunk: int
    line: int


def timestamps_path(run_dir: Path, spec: CameraSpec) -> Path:
    path = run_dir / spec.timestamps
    if not path.is_file():
        raise RobotCarFormatError(f"timestamps file not found: {path} (camera {spec.name})")
    return path


def read_timestamps(path: Path, problems: ProblemLog) -> Iterator[FrameEntry]:
    """``<unix µs> <chunk>`` per line; malformed or out-of-order lines are reported and skipped."""
    last = None
    with path.open() as lines:
        for number, line in enumerate(lines, start=1):
            tokens = line.split()
            if not tokens:
                continue
            try:
                stamp = int(tokens[0])
                chunk = int(tokens[1]) if len(tokens) > 1 else 0
            except ValueError:
                problems.add(path, number, f"expected '<timestamp> <chunk>', got {line.strip()!r}")
                continue
            if last is not None and stamp <= last:
                problems.add(path, number, f"timestamp {stamp} is not after {last}")
                continue
            last = stamp
            yield FrameEntry(stamp, chunk, number)


def image_path(run_dir: Path, spec: CameraSpec, stamp_us: int) -> Path:
    return run_dir / spec.image_dir / f"{stamp_us}.png"


def find_tags_file(run_dir: Path) -> Path | None:
    """``tags/<run>.yaml`` inside the run folder (or its only yaml file there)."""
    tags_dir = run_dir / "tags"
    exact = tags_dir / f"{run_dir.name}.yaml"
    if exact.is_file():
        return exact
    candidates = sorted(tags_dir.glob("*.yaml")) if tags_dir.is_dir() else []
    return candidates[0] if len(candidates) == 1 else None


def read_tags(path: Path) -> list[str]:
    """A RobotCar tags file: a YAML list of condition strings (e.g. night, rain)."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise RobotCarFormatError(f"cannot read tags file {path}: {exc}") from None
    if data is None:
        return []
    if not isinstance(data, list) or not all(isinstance(t, (str, int, float)) for t in data):
        raise RobotCarFormatError(f"tags file {path}: expected a YAML list of condition names")
    return [str(t).strip() for t in data if str(t).strip()]
