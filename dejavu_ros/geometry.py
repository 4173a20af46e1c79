"""Small geometric types shared by the stages (rotations themselves come from scipy)."""
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
