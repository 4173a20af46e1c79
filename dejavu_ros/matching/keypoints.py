"""Keyframe keypoints: Shi-Tomasi corners (the paper's matcher) or the maxima of the DVF keypoint head.

``matching.keypoints`` chooses. Both return (K, 2) float32 positions in the pixels of the image
the network saw, strongest first, at most ``matching.max_corners``, at least
``matching.min_distance`` apart.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .config import MatchingConfig
from .corners import detect_corners
from .matches import check_dense


def head_keypoints(score: torch.Tensor, cfg: MatchingConfig | None = None, border: int = 4) -> np.ndarray:
    """(K, 2) local maxima (x, y) of an H×W score map, strongest first, with a parabolic sub-pixel step.

    Non-maximum suppression in a window of ``min_distance`` (at least 3 px), maxima below
    ``keypoint_threshold`` dropped, ``border`` px kept clear (descriptors there see padding).
    """
    cfg = cfg or MatchingConfig()
    s = score.detach().float().cpu()
    h, w = s.shape
    if h <= 2 * border + 2 or w <= 2 * border + 2:
        return np.zeros((0, 2), np.float32)
    radius = max(1, int(round(cfg.min_distance / 2)))
    pooled = F.max_pool2d(s[None, None], 2 * radius + 1, stride=1, padding=radius)[0, 0]
    peak = (s == pooled) & (s >= cfg.keypoint_threshold)
    peak[:border], peak[-border:], peak[:, :border], peak[:, -border:] = False, False, False, False
    rows, cols = torch.nonzero(peak, as_tuple=True)
    if len(rows) == 0:
        return np.zeros((0, 2), np.float32)
    order = torch.argsort(s[rows, cols], descending=True)[: int(cfg.max_corners)]
    rows, cols = rows[order], cols[order]
    c = s[rows, cols]
    dx = _parabola(s[rows, cols - 1], c, s[rows, cols + 1])
    dy = _parabola(s[rows - 1, cols], c, s[rows + 1, cols])
    xy = torch.stack([cols.float() + dx, rows.float() + dy], dim=1)
    return np.ascontiguousarray(xy.numpy(), dtype=np.float32)


def _parabola(left: torch.Tensor, centre: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """Offset in (-0.5, 0.5) of the vertex of the parabola through three samples."""
    denom = left - 2.0 * centre + right
    step = torch.where(denom < 0, 0.5 * (left - right) / denom.clamp(max=-1e-12), torch.zeros_like(centre))
    return step.clamp(-0.5, 0.5)


def keyframe_keypoints(image: np.ndarray, dense: torch.Tensor, cfg: MatchingConfig | None = None) -> np.ndarray:
    """Keypoints of a keyframe in image pixels, by ``cfg.keypoints``."""
    cfg = cfg or MatchingConfig()
    if cfg.keypoints == "shi_tomasi":
        return detect_corners(image, cfg)
    from ..features.keypoint_head import cached_head
    from .sampling import rescale_xy

    dense = check_dense(dense, "dense")
    head = cached_head(cfg.keypoint_head)
    xy = head_keypoints(head.score(dense.cpu()), cfg)
    size = (int(dense.shape[2]), int(dense.shape[1]))
    image_size = (int(np.asarray(image).shape[1]), int(np.asarray(image).shape[0]))
    return xy if image_size == size else rescale_xy(xy, size, image_size)
