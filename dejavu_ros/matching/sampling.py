"""Descriptors read off a dense DVF map at sub-pixel positions.

Convention: pixel (x, y) is the centre of column x, row y (OpenCV's corner convention), so
``grid_sample`` runs with ``align_corners=True``: -1 and +1 are the centres of the first and last
pixels. Bilinear interpolation of unit vectors shortens them, hence the re-normalisation.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .matches import as_xy, check_dense

#: One-pixel shifts of the stability test: right, left, down, up.
SHIFTS = ((1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0))


def _pixels_to_grid(xy: torch.Tensor, height: int, width: int) -> torch.Tensor:
    scale = torch.tensor([2.0 / max(width - 1, 1), 2.0 / max(height - 1, 1)], dtype=xy.dtype,
                         device=xy.device)
    return xy * scale - 1.0


def sample_descriptors(dense: torch.Tensor, xy) -> torch.Tensor:
    """(K, n) unit descriptors of the n×H×W map ``dense`` at pixel positions ``xy`` (K, 2).

    Positions outside the image read the border pixel. The result lives on ``dense.device``.
    """
    dense = check_dense(dense, "dense")
    n, h, w = dense.shape
    pts = torch.as_tensor(as_xy(xy, "xy"), device=dense.device)
    if len(pts) == 0:
        return torch.zeros((0, n), dtype=torch.float32, device=dense.device)
    grid = _pixels_to_grid(pts, h, w).view(1, 1, -1, 2)
    out = F.grid_sample(dense[None], grid, mode="bilinear", padding_mode="border", align_corners=True)
    return F.normalize(out[0, :, 0, :].t(), dim=1)


def sample_shifted(dense: torch.Tensor, xy, step: float = 1.0) -> torch.Tensor:
    """(4, K, n) descriptors at ``xy`` shifted by ``step`` pixels along :data:`SHIFTS`."""
    dense = check_dense(dense, "dense")
    pts = as_xy(xy, "xy")
    if len(pts) == 0:
        return torch.zeros((len(SHIFTS), 0, dense.shape[0]), dtype=torch.float32, device=dense.device)
    shifted = np.concatenate([pts + step * np.asarray(s, np.float32) for s in SHIFTS])
    return sample_descriptors(dense, shifted).view(len(SHIFTS), len(pts), -1)


def rescale_xy(xy, from_size: tuple[int, int], to_size: tuple[int, int]) -> np.ndarray:
    """Pixel positions in an image of ``from_size`` (width, height) → the same points after a resize.

    Corner-aligned mapping (first and last pixel centres stay put), the convention of
    :func:`dejavu_ros.features.preprocess.resize`, which makes the dense map of a resized image.
    """
    pts = as_xy(xy, "xy").astype(np.float64)
    out = np.empty_like(pts)
    for axis in (0, 1):
        src, dst = from_size[axis], to_size[axis]
        out[:, axis] = pts[:, axis] * ((dst - 1) / (src - 1) if src > 1 else 1.0)
    return out.astype(np.float32)
