"""Training losses: the contextual triplet loss (paper §3.2) and an optional pixel-level term.

Contextual triplet: l(A, P, N) = max(CX(A, N) − CX(A, P) + m, 0) on ×4-downsampled features;
L = mean over cross-season triplets + α · mean over consistency triplets.

Spatial term (after Open-UCN's hardest-contrastive loss): on pixel-aligned pairs the same pixel is
the same scene point, so its two descriptors are pulled together while each is pushed away from
the closest descriptor of another sampled pixel beyond ``radius``. The triplet loss only shapes the
distribution of descriptors over an image; this term makes individual pixels match, which the
sparse verification downstream depends on.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..similarity.cx import contextual_similarity
from ..similarity.grid import to_grid
from .config import LossSection


@dataclass
class LossTerms:
    total: torch.Tensor
    cross: torch.Tensor
    consistency: torch.Tensor
    spatial: torch.Tensor
    cx_pos: torch.Tensor  # mean CX(A, P) of the cross triplets, for the log
    cx_neg: torch.Tensor


def triplet_hinge(cx_pos: torch.Tensor, cx_neg: torch.Tensor, margin: float) -> torch.Tensor:
    """max(CX(A,N) − CX(A,P) + m, 0), elementwise."""
    return F.relu(cx_neg - cx_pos + margin)


def contextual_triplet_loss(dense: torch.Tensor, cfg: LossSection,
                            aligned: torch.Tensor | None = None) -> LossTerms:
    """Loss of a batch: ``dense`` is B×6×n×H×W in role order (a0, a1, p0, p1, n0, n1)."""
    b = dense.shape[0]
    grid = to_grid(dense.flatten(0, 1), stride=cfg.cx_stride).unflatten(0, (b, 6))
    a0, a1, p0, p1, n0, n1 = (grid[:, k] for k in range(6))

    def cx(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return contextual_similarity(s, t, cfg.cx_offset, cfg.cx_bandwidth, symmetric=True)

    # cross-season (a0,p0,n0), (a1,p1,n1); consistency (n0,n1,a0), batched as one call per pair role
    anchors = torch.cat([a0, a1, n0])
    pos = cx(anchors, torch.cat([p0, p1, n1]))
    neg = cx(anchors, torch.cat([n0, n1, a0]))
    hinge = triplet_hinge(pos, neg, cfg.margin)
    cross, consistency = hinge[:2 * b].mean(), hinge[2 * b:].mean()
    spatial = dense.new_zeros(())
    if cfg.beta > 0 and aligned is not None and bool(aligned.any()):
        spatial = hardest_contrastive(dense[aligned][:, [0, 1]].flatten(0, 1),
                                      dense[aligned][:, [2, 3]].flatten(0, 1), cfg)
    total = cross + cfg.alpha * consistency + cfg.beta * spatial
    return LossTerms(total, cross, consistency, spatial, pos[:2 * b].mean().detach(), neg[:2 * b].mean().detach())


def hardest_contrastive(first: torch.Tensor, second: torch.Tensor, cfg: LossSection,
                        generator: torch.Generator | None = None) -> torch.Tensor:
    """Pixel loss for pixel-aligned dense maps ``first``/``second`` (B×n×H×W each).

    For P random pixels: relu(‖f1(x) − f2(x)‖ − m_pos)² + relu(m_neg − min_{y: |x−y|>r} ‖f1(x) − f2(y)‖)²,
    the hardest negative taken in both directions. With ``cfg.spatial_trim`` the pixels whose two
    descriptors differ most are left out of both terms: where the scene itself changed between
    the frames (a webcam over days) the same pixel is not the same point any more.
    """
    b, _n, h, w = first.shape
    count = min(cfg.spatial_points, h * w)
    losses = []
    for k in range(b):
        flat = torch.randperm(h * w, generator=generator, device=first.device)[:count]
        ys, xs = (flat // w).float(), (flat % w).float()
        f1 = first[k].flatten(1)[:, flat].t()  # P×n
        f2 = second[k].flatten(1)[:, flat].t()
        pos = (f1 - f2).norm(dim=1)
        if cfg.spatial_trim > 0:
            kept = torch.argsort(pos.detach())[: max(2, int(round(count * (1.0 - cfg.spatial_trim))))]
            f1, f2, pos, ys, xs = f1[kept], f2[kept], pos[kept], ys[kept], xs[kept]
        dist = torch.cdist(f1, f2)  # P×P
        near = (ys[:, None] - ys[None]) ** 2 + (xs[:, None] - xs[None]) ** 2 <= cfg.spatial_radius ** 2
        far = dist.masked_fill(near, float("inf"))
        hardest = torch.minimum(far.amin(dim=1), far.amin(dim=0))
        valid = torch.isfinite(hardest)
        pos_term = F.relu(pos - cfg.spatial_pos_margin).pow(2).mean()
        neg_term = F.relu(cfg.spatial_neg_margin - hardest[valid]).pow(2).mean() if valid.any() else pos.new_zeros(())
        losses.append(pos_term + neg_term)
    return torch.stack(losses).mean()
