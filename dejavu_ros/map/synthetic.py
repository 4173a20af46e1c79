"""Random but well-formed keyframes, for tests and benchmarks of code that reads maps."""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from .keyframe import Keyframe
from .thumbnail import make_thumbnail


def _unit(x: np.ndarray, axis: int) -> np.ndarray:
    return x / np.linalg.norm(x, axis=axis, keepdims=True)


def random_keyframe(rng: np.random.Generator, descriptor_dim: int = 10, global_dim: int = 160,
                    grid_hw: tuple[int, int] = (24, 32), num_keypoints: int = 500,
                    image_size: tuple[int, int] = (640, 480), thumbnail_side: int = 160,
                    with_optional: bool = True, source: str = "synthetic") -> Keyframe:
    """A keyframe with realistic shapes and value ranges (unit descriptors, a smooth thumbnail).

    ``with_optional`` fills covariance, 3-D points (some NaN) and intrinsics as well.
    """
    width, height = image_size
    n = descriptor_dim
    grid = _unit(rng.standard_normal((n, *grid_hw)).astype(np.float32), 0).astype(np.float16)
    keypoints = (rng.random((num_keypoints, 2)) * [width - 1, height - 1]).astype(np.float32)
    descriptors = _unit(rng.standard_normal((num_keypoints, n)).astype(np.float32), 1).astype(np.float16)
    scale = min(1.0, thumbnail_side / max(width, height))  # draw at thumbnail size: cheap
    yy, xx = np.mgrid[0:max(1, round(height * scale)), 0:max(1, round(width * scale))] / scale
    phase = rng.random(3) * 6.28
    image = np.stack([127 + 100 * np.sin(xx / (20 + 10 * c) + yy / 37 + phase[c]) for c in range(3)], axis=-1)
    kf = Keyframe(
        stamp=float(rng.random() * 1e4), position=rng.standard_normal(3) * 50,
        orientation=Rotation.random(random_state=int(rng.integers(2**31))).as_quat(),
        global_desc=_unit(rng.standard_normal(global_dim).astype(np.float32), 0),
        grid=grid, keypoints=keypoints, descriptors=descriptors, image_size=(width, height),
        source=source, thumbnail=make_thumbnail(image.astype(np.uint8), side=thumbnail_side))
    if with_optional:
        kf.covariance = np.diag(rng.random(6) * 0.1 + 0.01)
        points = rng.standard_normal((num_keypoints, 3)).astype(np.float32) + [0, 0, 10]
        points[rng.random(num_keypoints) < 0.1] = np.nan
        kf.points3d = points.astype(np.float32)
        kf.camera_k = np.array([[500.0, 0, width / 2], [0, 500.0, height / 2], [0, 0, 1]])
    return kf
