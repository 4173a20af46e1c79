"""Hand-crafted baselines as sets of vectors, scored through the same contextual similarity.

CX compares two *sets* of descriptors, so any local descriptor works: ORB (bits as ±1/√256, so
squared L2 is proportional to the Hamming distance), SIFT (unit length), RootSIFT (Arandjelović &
Zisserman: L1-normalise, square root) at detected keypoints, and a raw-pixel baseline made of the
patch-normalised cells of a small grey thumbnail.
"""
from __future__ import annotations

from typing import Callable

import cv2
import numpy as np
import torch

BASELINES = ("orb_cx", "sift_cx", "rootsift_cx", "pixels")


def _grey(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb


def orb_set(rgb: np.ndarray, max_features: int = 300) -> torch.Tensor:
    """ORB descriptors at FAST corners → M×256 vectors of ±1/16 (unit length)."""
    orb = cv2.ORB_create(nfeatures=max_features, edgeThreshold=15, patchSize=15)
    _kp, desc = orb.detectAndCompute(_grey(rgb), None)
    if desc is None:
        return torch.zeros(0, 256)
    bits = np.unpackbits(desc, axis=1).astype(np.float32)
    return torch.from_numpy((2.0 * bits - 1.0) / 16.0)


def _sift(rgb: np.ndarray, max_features: int) -> np.ndarray | None:
    sift = cv2.SIFT_create(nfeatures=max_features)
    _kp, desc = sift.detectAndCompute(_grey(rgb), None)
    return desc


def sift_set(rgb: np.ndarray, max_features: int = 300) -> torch.Tensor:
    """SIFT descriptors at DoG keypoints, L2-normalised → M×128."""
    desc = _sift(rgb, max_features)
    if desc is None:
        return torch.zeros(0, 128)
    desc = desc / (np.linalg.norm(desc, axis=1, keepdims=True) + 1e-7)
    return torch.from_numpy(desc.astype(np.float32))


def rootsift_set(rgb: np.ndarray, max_features: int = 300) -> torch.Tensor:
    """RootSIFT: L1-normalise then square root (Hellinger kernel as a dot product) → M×128."""
    desc = _sift(rgb, max_features)
    if desc is None:
        return torch.zeros(0, 128)
    desc = np.sqrt(desc / (np.abs(desc).sum(axis=1, keepdims=True) + 1e-7))
    return torch.from_numpy(desc.astype(np.float32))


def pixel_set(rgb: np.ndarray, size: tuple[int, int] = (64, 32), cell: int = 4) -> torch.Tensor:
    """Grey thumbnail (w×h) cut into cell×cell patches, each zero-mean and unit-norm → M×cell²."""
    thumb = cv2.resize(_grey(rgb), size, interpolation=cv2.INTER_AREA).astype(np.float32)
    h, w = thumb.shape
    patches = thumb[:h - h % cell, :w - w % cell].reshape(h // cell, cell, w // cell, cell)
    patches = patches.transpose(0, 2, 1, 3).reshape(-1, cell * cell)
    patches = patches - patches.mean(axis=1, keepdims=True)
    patches = patches / (np.linalg.norm(patches, axis=1, keepdims=True) + 1e-6)
    return torch.from_numpy(patches)


def baseline(name: str, max_features: int = 300) -> Callable[[np.ndarray], torch.Tensor]:
    """The descriptor-set function of a baseline by its summary name."""
    table = {"orb_cx": lambda im: orb_set(im, max_features), "sift_cx": lambda im: sift_set(im, max_features),
             "rootsift_cx": lambda im: rootsift_set(im, max_features), "pixels": pixel_set}
    if name not in table:
        raise ValueError(f"unknown baseline {name!r} (known: {', '.join(BASELINES)})")
    return table[name]
