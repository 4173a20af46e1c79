"""Global descriptor for the shortlist: a spatial layout of pooled DVF descriptors.

Pooling choice: the dense map is average-pooled over a ``cells×cells`` layout and each cell is
kept in place (not summed over the image). A robot relocalizing along a route sees a place from
nearly the same viewpoint as the map did, so *where* sky, road and façades sit is discriminative,
while a single global mean of 10-dim unit descriptors throws that away. Each cell is L2-normalised
(cells with dim content weigh the same as bright ones), then the whole vector, so a dot product
is the cosine similarity used to rank keyframes.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def global_descriptor(dense: torch.Tensor, cells: int = 4) -> torch.Tensor:
    """B×n×H×W (or n×H×W) → B×(n·cells²) float32, L2-normalised."""
    batch = dense[None] if dense.dim() == 3 else dense
    pooled = F.adaptive_avg_pool2d(batch.float(), (cells, cells))  # B×n×c×c
    pooled = F.normalize(pooled, dim=1)
    return F.normalize(pooled.flatten(1), dim=1)


def shortlist(query: torch.Tensor, database: torch.Tensor, k: int,
              scores: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k rows of ``database`` (N×D) by cosine with ``query`` (D,): (scores, indices), best first.

    ``scores``: the cosines ``database @ query`` when the caller has them already."""
    scores = database @ query if scores is None else scores
    k = min(k, scores.shape[0])
    return torch.topk(scores, k)
