"""Dense map → the coarse grid that contextual similarity runs on.

CX costs O((h·w)²·n) per pair, so it runs on a downsampled copy of the dense map: the authors
downsample features ×4 (bilinear, align_corners=True) and do not re-normalise them afterwards.
``max_side`` additionally caps the grid for the engine, where many keyframes are compared.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


def grid_size(height: int, width: int, stride: int = 4, max_side: int = 0) -> tuple[int, int]:
    """(h, w) of the grid for an H×W map: ÷stride (floor, as the authors), then capped."""
    h, w = max(1, height // stride), max(1, width // stride)
    if max_side and max(h, w) > max_side:
        scale = max_side / max(h, w)
        h, w = max(1, round(h * scale)), max(1, round(w * scale))
    return h, w


def to_grid(dense: torch.Tensor, stride: int = 4, mode: str = "bilinear", max_side: int = 0) -> torch.Tensor:
    """B×n×H×W (or n×H×W) dense descriptors → B×n×h×w (or n×h×w) grid."""
    single = dense.dim() == 3
    batch = dense[None] if single else dense
    size = grid_size(batch.shape[-2], batch.shape[-1], stride, max_side)
    if mode == "area":
        out = F.adaptive_avg_pool2d(batch, size)
    elif mode == "nearest":
        out = F.interpolate(batch, size=size, mode="nearest")
    elif mode == "bilinear":
        out = F.interpolate(batch, size=size, mode="bilinear", align_corners=True)
    else:
        raise ValueError(f"unknown grid mode {mode!r}")
    return out[0] if single else out


def pooled_grid(grids: torch.Tensor, stride: int) -> torch.Tensor:
    """B×n×h×w CX grids → B×n×⌈h/stride⌉×⌈w/stride⌉, every cell re-normalised to unit length.

    The coarse pre-rank's grid (similarity/prerank.py). Averaging unit descriptors shortens them by
    how much they disagree; CX compares squared distances, so the cells are scaled back to the
    sphere the full grid lives on.
    """
    h, w = grids.shape[-2:]
    size = (max(1, -(-h // stride)), max(1, -(-w // stride)))
    return F.normalize(F.adaptive_avg_pool2d(grids.float(), size), dim=1)


def extend_rows(cached: torch.Tensor | None, grids: torch.Tensor,
                derive: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """``derive`` of every keyframe grid, computing only the rows ``cached`` does not hold yet.

    Keyframe tensors derived from the map's grids (the pre-rank's pooled grids, the overlap head's
    boxes) follow a map that grows one keyframe at a time; a map with fewer rows than the cache (one
    read anew) is derived again in full."""
    have = 0 if cached is None or len(cached) > len(grids) else len(cached)
    if cached is not None and have == len(grids):
        return cached
    new = derive(grids[have:])
    return new if have == 0 else torch.cat([cached, new])
