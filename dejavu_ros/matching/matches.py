"""The result of descriptor matching, and the input checks every matching function shares."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DejavuError


class MatchingError(DejavuError, ValueError):
    """Arrays handed to the matching stage have the wrong shape; the message names the argument."""


@dataclass
class Matches:
    """Putative correspondences between a query image and a keyframe, after the descriptor filters.

    ``map_idx`` indexes the keyframe's stored corners (so their 3-D points can be looked up);
    ``query_idx`` indexes the query's corners, or is -1 where the query needed none (dense
    direction). ``counts`` records how many candidates survived each filter, in order.
    """

    query_xy: np.ndarray  # (N, 2) float32, query pixels
    map_xy: np.ndarray  # (N, 2) float32, keyframe pixels
    map_idx: np.ndarray  # (N,) int64
    query_idx: np.ndarray  # (N,) int64
    distance: np.ndarray  # (N,) float32, L2 distance of the unit descriptors
    ratio: np.ndarray  # (N,) float32, best / second-best distance (0 = no competitor)
    direction: str  # "corners" or "dense"
    counts: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(len(self.map_idx))

    @property
    def scores(self) -> np.ndarray:
        """Confidence in [0, 1]: how far the match is from failing the ratio test."""
        return np.clip(1.0 - self.ratio, 0.0, 1.0).astype(np.float32)

    def subset(self, keep: np.ndarray) -> "Matches":
        keep = np.asarray(keep)
        return Matches(self.query_xy[keep], self.map_xy[keep], self.map_idx[keep], self.query_idx[keep],
                       self.distance[keep], self.ratio[keep], self.direction, dict(self.counts))

    @classmethod
    def concat(cls, parts: list["Matches"]) -> "Matches":
        """One match set of several (the hybrid's DVF and SIFT matches go to one RANSAC)."""
        parts = [p for p in parts if p is not None]
        if len(parts) == 1:
            return parts[0]
        counts: dict[str, int] = {}
        for p in parts:
            counts.update(p.counts)
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                     ("query_xy", "map_xy", "map_idx", "query_idx", "distance", "ratio")),
                   direction="+".join(p.direction for p in parts), counts=counts)

    @classmethod
    def best_of_scales(cls, parts: list["Matches"]) -> "Matches":
        """Dense matches of one keyframe searched at several query scales: each keyframe corner keeps
        its most similar match, so a corner found at two scales counts once in RANSAC."""
        if len(parts) == 1:
            return parts[0]
        merged = cls.concat(parts)
        if not len(merged):
            return cls.empty("dense", merged.counts)
        order = np.lexsort((merged.distance, merged.map_idx))  # by corner, most similar first
        first = np.ones(len(order), bool)
        first[1:] = merged.map_idx[order][1:] != merged.map_idx[order][:-1]
        kept = merged.subset(np.sort(order[first]))
        kept.direction = "dense"
        return kept

    @classmethod
    def empty(cls, direction: str, counts: dict[str, int] | None = None) -> "Matches":
        return cls(np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32), np.zeros(0, np.int64),
                   np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.float32), direction,
                   dict(counts or {}))


def as_xy(xy, name: str) -> np.ndarray:
    """(K, 2) float32 pixel positions; (0, 2) for an empty input."""
    arr = xy.detach().cpu().numpy() if isinstance(xy, torch.Tensor) else np.asarray(xy, dtype=np.float32)
    arr = arr.astype(np.float32, copy=False)
    if arr.size == 0:
        return np.zeros((0, 2), np.float32)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise MatchingError(f"{name}: expected pixel positions of shape (K, 2), got {tuple(arr.shape)}")
    if not np.all(np.isfinite(arr)):
        raise MatchingError(f"{name}: pixel positions must be finite")
    return arr


def as_unit_descriptors(desc, name: str, device: torch.device | str = "cpu",
                        dim: int | None = None) -> torch.Tensor:
    """(K, n) float32 torch tensor on ``device``, re-normalised (stored float16 rows drift off the sphere)."""
    t = torch.as_tensor(desc if isinstance(desc, torch.Tensor) else np.asarray(desc), dtype=torch.float32,
                        device=device)
    if t.ndim != 2 or (dim is not None and t.shape[0] > 0 and t.shape[1] != dim):
        want = f"(K, {dim})" if dim is not None else "(K, n)"
        raise MatchingError(f"{name}: expected descriptors of shape {want}, got {tuple(t.shape)}")
    return F.normalize(t, dim=1)


def check_dense(dense, name: str) -> torch.Tensor:
    """An n×H×W float tensor (a dense descriptor map)."""
    if not isinstance(dense, torch.Tensor):
        dense = torch.as_tensor(np.asarray(dense))
    if dense.ndim != 3 or min(dense.shape) < 1:
        raise MatchingError(f"{name}: expected a dense descriptor map of shape (n, H, W), "
                            f"got {tuple(dense.shape)}")
    return dense.float()


def unit_distance(sim: torch.Tensor) -> torch.Tensor:
    """L2 distance between unit vectors from their cosine similarity."""
    return torch.sqrt(torch.clamp(2.0 - 2.0 * sim, min=0.0))
