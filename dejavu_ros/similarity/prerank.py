"""Coarse CX pre-rank for route localization: contextual similarity of the global descriptor's best
``engine.prerank_k`` keyframes on grids pooled ``similarity.prerank_stride``× further, to choose the
shortlist the full CX re-ranks and to give the route search a map-wide score.

Why: the global descriptor pools a frame into a 4×4 layout; across seasons that loses the place
(Nordland winter frames: the right place among the cosine's top 20 for 61 % of frames), while CX on
grids pooled to 4×8 cells keeps it for 87–94 % at ~11 µs per keyframe on one CPU thread (256×128).
Sequences of frames then find the place for 95 % of the Nordland drive instead of 62 % (README,
Route localization).

Why routes only: a single frame's best candidate is the full CX's choice, and on a repetitive
corridor (VPR-Bench) the full CX prefers wrong keyframes that the cosine shortlist happened to leave
out (best of all 111 keyframes right for 46.8 % of the frames, of the cosine's 20 for 52.3 %), so a
better shortlist made single frames worse there; a route weighs many frames and is not misled so.
"""
from __future__ import annotations

import numpy as np
import torch

from .config import SimilarityConfig
from .cx import contextual_similarity
from .grid import extend_rows, pooled_grid


class CoarseCX:
    """The map's pooled grids, kept in step with the map (pooled once per keyframe, as it arrives)."""

    def __init__(self) -> None:
        self._pooled: torch.Tensor | None = None
        self._stride = 0

    def _update(self, grids: torch.Tensor, stride: int) -> torch.Tensor:
        if stride != self._stride:
            self._pooled, self._stride = None, stride
        self._pooled = extend_rows(self._pooled, grids, lambda new: pooled_grid(new, stride))
        return self._pooled

    def scores(self, query_grid: torch.Tensor, grids: torch.Tensor, rows: np.ndarray,
               sim: SimilarityConfig) -> np.ndarray:
        """Coarse CX of the query's grid (n×h×w) against keyframe ``rows`` of the map's ``grids``."""
        pooled = self._update(grids, sim.prerank_stride)
        query = pooled_grid(query_grid[None], sim.prerank_stride)[0]
        keys = pooled[torch.as_tensor(np.asarray(rows, np.int64), device=pooled.device)]
        cx = contextual_similarity(query, keys, sim.offset, sim.bandwidth, sim.symmetric,
                                   sim.memory_budget_mb << 20)
        return cx.cpu().numpy().astype(np.float64)
