"""Small geometric types and checks shared by the stages (rotations themselves come from scipy)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class CameraIntrinsics:
    """Pinhole intrinsics of an image, as a CameraInfo message gives them."""

    k: np.ndarray  # (3, 3)
    width: int
    height: int
    distortion: np.ndarray | None = None  # OpenCV order (k1 k2 p1 p2 k3 ...), None = rectified
    frame_id: str = ""

    @classmethod
    def from_fxfycxcy(cls, fx: float, fy: float, cx: float, cy: float, width: int, height: int,
                      frame_id: str = "") -> "CameraIntrinsics":
        k = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
        return cls(k=k, width=int(width), height=int(height), frame_id=frame_id)

    def scaled(self, sx: float, sy: float) -> "CameraIntrinsics":
        """Intrinsics of the same camera after resizing the image by (sx, sy)."""
        k = self.k.copy()
        k[0] *= sx
        k[1] *= sy
        return CameraIntrinsics(k=k, width=int(round(self.width * sx)), height=int(round(self.height * sy)),
                                distortion=self.distortion, frame_id=self.frame_id)

    @property
    def valid(self) -> bool:
        return bool(np.all(np.isfinite(self.k)) and self.k[0, 0] > 0 and self.k[1, 1] > 0)


#: |‖q‖ − 1| above this makes a quaternion invalid; below it, it is re-normalised where it is used.
QUATERNION_TOLERANCE = 1e-3


def pose_problem(position, orientation, covariance=None) -> str | None:
    """Why a pose cannot be used (wrong shape, NaN/Inf, a quaternion far from unit), or None.

    One rule for every pose the package takes in (odometry, keyframes, ground truth), so a pose
    refused in one place is refused everywhere with the same words.
    """
    p, q = np.asarray(position, np.float64), np.asarray(orientation, np.float64)
    if p.shape != (3,):
        return f"position must be 3 numbers, got shape {p.shape}"
    if q.shape != (4,):
        return f"orientation must be a quaternion (x, y, z, w), got shape {q.shape}"
    if not np.all(np.isfinite(p)):
        return f"non-finite position {p.tolist()}"
    if not np.all(np.isfinite(q)):
        return f"non-finite quaternion {q.tolist()}"
    norm = float(np.linalg.norm(q))
    if abs(norm - 1.0) > QUATERNION_TOLERANCE:
        return f"quaternion norm {norm:.6g} is not 1 (x, y, z, w order)"
    if covariance is not None:
        c = np.asarray(covariance, np.float64)
        if c.size != 36:
            return f"covariance must be 36 values (6×6), got {c.size}"
        if not np.all(np.isfinite(c)):
            return "non-finite covariance"
    return None
