"""All-pairs contextual similarity and the ground truth it is scored against.

The symmetric CX of a pair is the mean of the two directional scores, so the N×N matrix needs each
ordered pair once: D[i, j] = CX(source i, target j), then (D + Dᵀ) / 2. Targets are batched per
grid shape (data sets of different aspect ratios give different grids) and the distance matrices
are chunked by :func:`dejavu_ros.similarity.cx.cx_directional`'s byte budget, so memory stays
bounded whatever N is.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch

from ..similarity.cx import DEFAULT_BUDGET, cx_directional
from ..datasets.manifest import ImageRecord, place_distance


def pairwise_cx(sets: Sequence[torch.Tensor], offset: float = 1.0, bandwidth: float = 0.5,
                symmetric: bool = True, memory_budget_bytes: int = DEFAULT_BUDGET,
                progress: Callable[[int], None] | None = None) -> np.ndarray:
    """N×N CX between descriptor sets: each entry is an n×h×w grid or an M×n set of vectors.

    Sets of different sizes are fine (sparse keypoint descriptors); empty sets score 0.
    """
    vectors = [s.reshape(s.shape[0], -1).t().contiguous() if s.dim() == 3 else s.contiguous() for s in sets]
    n = len(vectors)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, v in enumerate(vectors):
        groups.setdefault(tuple(v.shape), []).append(i)
    stacked = {shape: torch.stack([vectors[i] for i in idx]) for shape, idx in groups.items() if shape[0] > 0}
    directional = np.zeros((n, n), dtype=np.float64)
    with torch.inference_mode():
        for i, source in enumerate(vectors):
            if source.shape[0] > 0:
                for shape, idx in groups.items():
                    if shape[0] == 0:
                        continue
                    scores = cx_directional(source[None], stacked[shape], offset, bandwidth, memory_budget_bytes)
                    directional[i, idx] = scores.double().numpy()
            if progress is not None:
                progress(1)
    return 0.5 * (directional + directional.T) if symmetric else directional


def ground_truth(records: Sequence[ImageRecord], positive_radius: float = 0.0,
                 ignore_radius: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(positive, valid) N×N boolean matrices.

    positive: same sequence and places within ``positive_radius``; valid: pairs that are scored —
    not an image with itself, and not the ambiguous band of places within ``ignore_radius`` that
    are not positives (neighbouring frames of a route are neither clearly same nor different).
    """
    n = len(records)
    dist = np.full((n, n), math.inf)
    for i in range(n):
        for j in range(i, n):
            dist[i, j] = dist[j, i] = place_distance(records[i], records[j])
    positive = dist <= positive_radius
    valid = ~((dist > positive_radius) & (dist <= ignore_radius))
    np.fill_diagonal(valid, False)
    return positive, valid

