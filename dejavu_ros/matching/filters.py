"""Descriptor-level filters: nearest neighbours, mutual check, Lowe's ratio and the stability test.

All work on cosine-similarity matrices of unit descriptors (higher = closer) and are vectorised
over every candidate at once.
"""
from __future__ import annotations

import torch

from .matches import unit_distance


def nearest_two(sim: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per row of ``sim`` (A, B): best column, its similarity, and the runner-up's similarity.

    With a single column the runner-up is -inf (no competitor, the ratio test then passes).
    """
    if sim.shape[1] >= 2:
        top = torch.topk(sim, 2, dim=1)
        return top.indices[:, 0], top.values[:, 0], top.values[:, 1]
    best, idx = sim.max(dim=1)
    return idx, best, torch.full_like(best, float("-inf"))


def distance_ratio(best_sim: torch.Tensor, second_sim: torch.Tensor) -> torch.Tensor:
    """Lowe's ratio d(best) / d(second best) in descriptor distance; 0 when there is no competitor."""
    d1 = unit_distance(best_sim)
    d2 = unit_distance(torch.where(torch.isfinite(second_sim), second_sim, torch.full_like(second_sim, -1.0)))
    ratio = d1 / torch.clamp(d2, min=1e-12)
    ratio = torch.where(d2 > 1e-12, ratio, torch.ones_like(ratio))  # a duplicate competitor: ambiguous
    return torch.where(torch.isfinite(second_sim), ratio, torch.zeros_like(ratio))


def mutual_mask(sim: torch.Tensor, best_col: torch.Tensor) -> torch.Tensor:
    """Rows whose best column picks them back as its best row (mutual nearest neighbours)."""
    if sim.shape[0] == 0 or sim.shape[1] == 0:
        return torch.zeros(sim.shape[0], dtype=torch.bool, device=sim.device)
    best_row = sim.argmax(dim=0)
    rows = torch.arange(sim.shape[0], device=sim.device)
    return best_row[best_col] == rows


def stability_mask(shifted_desc: torch.Tensor, target_desc: torch.Tensor, target_xy: torch.Tensor,
                   matched_target: torch.Tensor, radius_px: float) -> torch.Tensor:
    """Open-UCN's stability test, vectorised.

    ``shifted_desc`` (S, N, n) are the N matched source descriptors re-sampled one pixel away in S
    directions. Each must find, among all ``target_desc`` (M, n), a nearest neighbour lying within
    ``radius_px`` of the target it matched unshifted (``matched_target``, (N,) indices into the
    targets at ``target_xy`` (M, 2)). A match that flips to another point under a one-pixel nudge
    sits on a descriptor ridge, not a distinctive spot, and is rejected.
    """
    if shifted_desc.shape[1] == 0:
        return torch.zeros(0, dtype=torch.bool, device=target_desc.device)
    nn = torch.einsum("snd,md->snm", shifted_desc, target_desc).argmax(dim=2)  # (S, N)
    moved = torch.linalg.norm(target_xy[nn] - target_xy[matched_target][None], dim=2)
    return torch.all(moved <= radius_px, dim=0)
