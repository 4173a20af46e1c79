"""What the map remembers about one keyframe."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Keyframe:
    """One keyframe row. Arrays are numpy; poses are the *camera* pose in the map frame.

    ``keypoints`` are (x, y) pixel positions in the image the keyframe was mapped from, of size
    ``image_size``; ``points3d`` (optional) are the same corners in the keyframe's camera frame
    (metres, NaN where depth was unknown); ``sift_keypoints`` / ``sift_descriptors`` (optional) are
    OpenCV SIFT features in the same pixels, stored when the map is built for ``matching.method``
    sift or dvf+sift or for ``matching.refine``; ``head_keypoints`` / ``head_descriptors`` /
    ``head_points3d`` (optional) are the keypoint head's keypoints of the same image, stored for
    ``matching.refine`` (the pose's matches; ``keypoints`` stay what the trust evidence verifies).
    """

    stamp: float
    position: np.ndarray  # (3,) float64
    orientation: np.ndarray  # (4,) float64 quaternion x, y, z, w
    global_desc: np.ndarray  # (D,) float32, L2-normalised
    grid: np.ndarray  # (n, h, w) float16, the downsampled dense map CX runs on
    keypoints: np.ndarray  # (K, 2) float32
    descriptors: np.ndarray  # (K, n) float16
    image_size: tuple[int, int]  # (width, height) of the image the keypoints refer to
    frame_id: str = "map"
    source: str = ""
    covariance: np.ndarray | None = None  # (6, 6) float64
    points3d: np.ndarray | None = None  # (K, 3) float32
    camera_k: np.ndarray | None = None  # (3, 3) float64 intrinsics of the keyframe image
    thumbnail: bytes = b""  # JPEG
    sift_keypoints: np.ndarray | None = None  # (S, 2) float32
    sift_descriptors: np.ndarray | None = None  # (S, 128) uint8
    head_keypoints: np.ndarray | None = None  # (H, 2) float32
    head_descriptors: np.ndarray | None = None  # (H, n) float16
    head_points3d: np.ndarray | None = None  # (H, 3) float32
    id: int | None = None
    extra: dict = field(default_factory=dict)
