"""RobotCar SDK files (camera models, LUTs, extrinsics) and the frame conventions around them.

RobotCar frames: the vehicle reference is the stereo camera with x forward, y right, z down
(FRD); the INS reports poses in NED (northing, easting, down) with roll/pitch/yaw of its own FRD
body, composed as R = Rz(yaw)·Ry(pitch)·Rx(roll). ROS wants ENU worlds and FLU bodies
(REP 103), so:

* position: (x, y, z)_ENU = (easting, northing, -down) minus the origin;
* orientation: R_ENU<-FLU = A · R_NED<-FRD · B with A = [[0,1,0],[1,0,0],[0,0,-1]] (NED->ENU)
  and B = diag(1, -1, -1) (FLU->FRD);
* ``base_link`` is the stereo camera's origin with FLU axes (B applied to the SDK's frame).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from .errors import RobotCarFormatError
from .layout import CameraSpec

NED_TO_ENU = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
FLU_TO_FRD = np.diag([1.0, -1.0, -1.0])  # its own inverse: also FRD -> FLU


def se3_from_xyzrpy(values) -> np.ndarray:
    """The SDK's build_se3_transform: [Rz(yaw)·Ry(pitch)·Rx(roll) | xyz]."""
    x, y, z, roll, pitch, yaw = (float(v) for v in values)
    out = np.eye(4)
    out[:3, :3] = Rotation.from_euler("ZYX", [yaw, pitch, roll]).as_matrix()
    out[:3, 3] = (x, y, z)
    return out


def invert(transform: np.ndarray) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3] = transform[:3, :3].T
    out[:3, 3] = -transform[:3, :3].T @ transform[:3, 3]
    return out


def axes(rotation: np.ndarray) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3] = rotation
    return out


BASE_FROM_STEREO = axes(FLU_TO_FRD)  # FRD stereo frame -> FLU base_link (same origin)


@dataclass
class CameraModel:
    name: str
    fx: float
    fy: float
    cx: float
    cy: float
    g_camera_image: np.ndarray  # 4x4: image frame (z forward, x right, y down) -> camera x-forward frame


def _numbers(path: Path, line: str, count: int | None, number: int) -> list[float]:
    try:
        values = [float(v) for v in line.replace(",", " ").split()]
    except ValueError:
        raise RobotCarFormatError(f"{path}:{number}: expected numbers, got {line.strip()!r}") from None
    if count is not None and len(values) != count:
        raise RobotCarFormatError(f"{path}:{number}: expected {count} numbers, got {len(values)}")
    return values


def read_camera_model(models_dir: Path, spec: CameraSpec) -> CameraModel:
    path = Path(models_dir) / f"{spec.model}.txt"
    if not path.is_file():
        raise RobotCarFormatError(f"camera model file not found: {path} (camera {spec.name} uses model "
                                  f"{spec.model}; --models should be the SDK's models folder)")
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    if len(lines) < 5:
        raise RobotCarFormatError(f"{path}: expected 'fx fy cx cy' and a 4x4 G_camera_image (5 lines), "
                                  f"got {len(lines)} lines")
    fx, fy, cx, cy = _numbers(path, lines[0], 4, 1)
    g = np.array([_numbers(path, lines[i], 4, i + 1) for i in range(1, 5)])
    return CameraModel(spec.model, fx, fy, cx, cy, g)


def lut_path_for(models_dir: Path, spec: CameraSpec) -> Path:
    return Path(models_dir) / f"{spec.model}_distortion_lut.bin"


def read_lut(path: Path, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """SDK undistortion LUT -> (map_x, map_y) for cv2.remap.

    float64, 2·W·H values: all u (column) positions, then all v (row) positions, row-major over
    the undistorted image, each pointing into the distorted image (0-based).
    """
    path = Path(path)
    if not path.is_file():
        raise RobotCarFormatError(f"undistortion LUT not found: {path}")
    expected = 2 * width * height * 8
    size = path.stat().st_size
    if size != expected:
        raise RobotCarFormatError(f"undistortion LUT {path} has {size} bytes; images of {width}x{height} "
                                  f"need 2*{width}*{height} float64 = {expected} bytes (wrong camera?)")
    lut = np.fromfile(path, dtype=np.float64).reshape(2, height, width)
    if not np.all(np.isfinite(lut)):
        raise RobotCarFormatError(f"undistortion LUT {path} contains NaN/Inf")
    return lut[0].astype(np.float32), lut[1].astype(np.float32)


def undistort(image: np.ndarray, maps: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    return cv2.remap(image, maps[0], maps[1], interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def read_extrinsics(extrinsics_dir: Path, stem: str) -> np.ndarray:
    """``x y z roll pitch yaw`` file -> 4x4 as the SDK builds it (no inversion here)."""
    path = Path(extrinsics_dir) / f"{stem}.txt"
    if not path.is_file():
        raise RobotCarFormatError(f"extrinsics file not found: {path}")
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    if not lines:
        raise RobotCarFormatError(f"{path}: empty, expected 'x y z roll pitch yaw'")
    return se3_from_xyzrpy(_numbers(path, lines[0], 6, 1))


def camera_in_stereo(extrinsics_dir: Path, spec: CameraSpec) -> np.ndarray:
    """Pose of the camera's x-forward frame in the stereo (vehicle) frame.

    The mono_*.txt files hold the inverse of what their name suggests (stereo w.r.t. camera;
    RobotCar SDK issues #22 and #40): mono_left.txt has y = +1.64 m, which would put the *left*
    camera on the right (y points right). Inverting puts it on the left, looking left.
    """
    transform = read_extrinsics(extrinsics_dir, spec.extrinsics)
    return invert(transform) if spec.extrinsics_inverted else transform


def optical_in_base(extrinsics_dir: Path, spec: CameraSpec, model: CameraModel) -> np.ndarray:
    """T_base_link<-optical: base (FLU) <- stereo (FRD) <- camera <- image (optical) frame."""
    return BASE_FROM_STEREO @ camera_in_stereo(extrinsics_dir, spec) @ model.g_camera_image


def ins_in_base(extrinsics_dir: Path) -> np.ndarray:
    """T_base_link<-ins, with the INS frame given FLU axes (ins.txt is INS in the stereo frame)."""
    return BASE_FROM_STEREO @ read_extrinsics(extrinsics_dir, "ins") @ axes(FLU_TO_FRD)


def ned_to_enu_pose(north: float, east: float, down: float, roll: float, pitch: float, yaw: float,
                    origin_ned: np.ndarray) -> np.ndarray:
    """INS row -> T_world(ENU)<-ins(FLU), with the world origin at ``origin_ned``."""
    ned = se3_from_xyzrpy([north, east, down, roll, pitch, yaw])
    out = np.eye(4)
    out[:3, :3] = NED_TO_ENU @ ned[:3, :3] @ FLU_TO_FRD
    out[:3, 3] = NED_TO_ENU @ (ned[:3, 3] - origin_ned)
    return out


def frd_to_flu_motion(transform: np.ndarray) -> np.ndarray:
    """A relative motion expressed in FRD frames, re-expressed in the matching FLU frames."""
    return BASE_FROM_STEREO @ transform @ BASE_FROM_STEREO
