"""Sequence consistency (SeqSLAM-style score fusion), off by default.

A single night frame can be ambiguous; a few consecutive frames along the route rarely are. Map
keyframes built from one traversal have increasing ids along the route, so if the robot now sees
keyframe k, a frame seen t steps ago most likely showed a keyframe near k − t·v for some
velocity v ≥ 0 (keyframes per frame). For each candidate we take, for every earlier frame, the
best CX score it gave to any keyframe inside that velocity cone, and average those with the
current score: a candidate supported by the recent past rises, an isolated look-alike sinks.
"""
from __future__ import annotations

from collections import deque

import numpy as np


class SequenceFusion:
    """Keeps the last ``length`` frames' (keyframe ids, CX scores) and fuses new scores with them."""

    def __init__(self, length: int, max_step: float = 2.0) -> None:
        self.length = int(length)
        self.max_step = float(max_step)  # keyframes per frame the robot may advance (either way)
        self.history: deque[tuple[np.ndarray, np.ndarray]] = deque(maxlen=max(self.length - 1, 0))

    def reset(self) -> None:
        self.history.clear()

    def fuse(self, ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Fused scores for ``ids`` (same order); records the current frame for the next calls."""
        ids = np.asarray(ids, np.int64)
        scores = np.asarray(scores, np.float64)
        if self.length <= 1:
            return scores
        total = scores.copy()
        count = np.ones_like(scores)
        for lag, (past_ids, past_scores) in enumerate(reversed(self.history), start=1):
            reach = lag * self.max_step + 1.0
            # best past score within the cone k − lag·v, v ∈ [−max_step, max_step]
            near = np.abs(ids[:, None] - past_ids[None, :]) <= reach
            best = np.where(near, past_scores[None, :], -np.inf).max(axis=1)
            supported = np.isfinite(best)
            total[supported] += best[supported]
            count += 1  # a frame with nothing in the cone counts as zero support
        self.history.append((ids, scores))
        return total / count
