"""Helpers shared by the matching tests (no tests here): synthetic textures and simple dense
descriptors whose behaviour under shifts and warps is known exactly."""
from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

TUM_K = np.array([[535.4, 0.0, 320.1], [0.0, 539.2, 247.6], [0.0, 0.0, 1.0]])


def texture(height: int = 240, width: int = 320, seed: int = 0, blur: float = 2.0) -> np.ndarray:
    """uint8 grey image of smoothed noise plus a few rectangles: many corners, all distinctive."""
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.random((height, width)).astype(np.float32), (0, 0), blur)
    img = (img - img.min()) / (img.max() - img.min())
    for _ in range(12):
        x0, y0 = rng.integers(0, width - 40), rng.integers(0, height - 40)
        img[y0:y0 + rng.integers(10, 40), x0:x0 + rng.integers(10, 40)] = rng.random()
    return (img * 255).astype(np.uint8)


def patch_dense(gray: np.ndarray, radius: int = 4, blur: float = 1.0, smooth: float = 0.0) -> torch.Tensor:
    """n×H×W dense descriptor: the zero-mean, unit-norm (2r+1)² patch around every pixel.

    Shifting the image shifts this map exactly, and it ignores brightness offsets and gain.
    ``smooth`` (σ, px) blurs the map itself, as DVF's upsampling decoder does.
    """
    img = gray.astype(np.float32) / 255.0
    if blur > 0:
        img = cv2.GaussianBlur(img, (0, 0), blur)
    t = torch.from_numpy(img)[None, None]
    side = 2 * radius + 1
    patches = F.unfold(F.pad(t, (radius,) * 4, mode="replicate"), side)  # 1 × side² × HW
    patches = patches - patches.mean(dim=1, keepdim=True)
    dense = F.normalize(patches[0], dim=0).reshape(side * side, *gray.shape)
    if smooth > 0:
        blurred = [cv2.GaussianBlur(c, (0, 0), smooth) for c in dense.numpy()]
        dense = F.normalize(torch.from_numpy(np.stack(blurred)), dim=0)
    return dense


def shift_image(gray: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Content moved by (dx, dy): pixel (x, y) of the input appears at (x + dx, y + dy)."""
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(gray, m, (gray.shape[1], gray.shape[0]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT)


def sift_at(gray: np.ndarray, xy: np.ndarray, size: float = 16.0) -> np.ndarray:
    """(K, 128) SIFT descriptors computed at given corners (SIFT-at-Shi-Tomasi), row order kept."""
    kps = [cv2.KeyPoint(float(x), float(y), size, 0.0) for x, y in xy]
    out_kps, desc = cv2.SIFT_create().compute(gray, kps)
    assert len(out_kps) == len(kps), "SIFT dropped keypoints; row order would be lost"
    return desc.astype(np.float32)


def project(points: np.ndarray, rotation: np.ndarray, translation: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Pixels of world points seen by a camera with pose X_world = R X_cam + t."""
    cam = (points - translation) @ rotation  # R^T (X - t), row form
    uv = cam[:, :2] / cam[:, 2:3]
    return (uv * [k[0, 0], k[1, 1]] + [k[0, 2], k[1, 2]]).astype(np.float32)
