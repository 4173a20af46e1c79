"""Shi-Tomasi corners at sub-pixel precision (the points whose DVF descriptors get matched)."""
from __future__ import annotations

import cv2
import numpy as np

from .config import MatchingConfig
from .matches import MatchingError


def to_gray(image: np.ndarray, name: str = "image") -> np.ndarray:
    """uint8 or float single-channel view of an RGB / grey image, as OpenCV's corner code wants it."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3 and image.shape[2] in (3, 4):
        code = cv2.COLOR_RGB2GRAY if image.shape[2] == 3 else cv2.COLOR_RGBA2GRAY
        if image.dtype not in (np.uint8, np.uint16, np.float32):
            image = image.astype(np.float32)
        image = cv2.cvtColor(image, code)
    if image.ndim != 2:
        raise MatchingError(f"{name}: expected an H×W grey or H×W×3 RGB image, got shape {image.shape}")
    if image.dtype == np.uint8:
        return image
    return image.astype(np.float32)


def detect_corners(image: np.ndarray, cfg: MatchingConfig | None = None,
                   mask: np.ndarray | None = None) -> np.ndarray:
    """(K, 2) float32 corner positions (x, y), strongest first, K ≤ ``cfg.max_corners``.

    ``cv2.goodFeaturesToTrack`` finds the minimum-eigenvalue corners; ``cv2.cornerSubPix`` then
    moves each to the sub-pixel saddle of the gradient field, because descriptors are sampled
    bilinearly and a half-pixel error would bias every match. A featureless image yields (0, 2).
    """
    cfg = cfg or MatchingConfig()
    gray = to_gray(image)
    if gray.size == 0 or min(gray.shape) < cfg.block_size:
        return np.zeros((0, 2), np.float32)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != gray.shape:
            raise MatchingError(f"mask: shape {mask.shape} differs from the image's {gray.shape}")
        mask = (mask > 0).astype(np.uint8)
    corners = cv2.goodFeaturesToTrack(gray, maxCorners=int(cfg.max_corners),
                                      qualityLevel=float(cfg.quality_level),
                                      minDistance=float(cfg.min_distance), mask=mask,
                                      blockSize=int(cfg.block_size), useHarrisDetector=False)
    if corners is None or len(corners) == 0:
        return np.zeros((0, 2), np.float32)
    corners = corners.reshape(-1, 1, 2).astype(np.float32)
    r = int(cfg.subpixel_radius)
    if r > 0:
        criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_COUNT, 30, 0.01)
        integer = corners.copy()
        corners = cv2.cornerSubPix(gray, corners, (r, r), (-1, -1), criteria)
        # A refinement that wanders out of its window met no saddle there: keep the pixel position.
        wandered = np.any(np.abs(corners - integer) > r, axis=2)[:, 0]
        corners[wandered] = integer[wandered]
    xy = _drop_merged(corners.reshape(-1, 2), 0.5 * float(cfg.min_distance))
    h, w = gray.shape
    xy[:, 0] = np.clip(xy[:, 0], 0.0, w - 1.0)
    xy[:, 1] = np.clip(xy[:, 1], 0.0, h - 1.0)
    return np.ascontiguousarray(xy, dtype=np.float32)


def _drop_merged(xy: np.ndarray, radius: float) -> np.ndarray:
    """Drop corners that sub-pixel refinement pulled within ``radius`` of a stronger one (same saddle)."""
    if radius <= 0 or len(xy) < 2:
        return xy
    d2 = ((xy[:, None] - xy[None]) ** 2).sum(axis=2)
    weaker_close = np.triu(d2 < radius * radius, k=1).any(axis=0)  # column j near some earlier i
    return xy[~weaker_close]
