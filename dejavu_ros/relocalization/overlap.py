"""Overlap and relative scale between two views: the box head for many pairs, the pyramid matcher for one.

The engine embeds every keyframe's CX grid as a box once per map and the query's per frame, so each
candidate carries its overlap with the query and their relative scale at the cost of a few vector
operations (features/overlap_head.py). ``dejavu-ros overlap A B`` asks a SIFT similarity first, then
the DVF pyramid matcher (matching/view_overlap.py: exact where the views share structure), then the
dense scale search (matching/dense_scale.py: the two DVF maps correlated over zoom and shift), then
the boxes.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..config import DejavuConfig
from ..features.overlap_head import BoxHead, cached_overlap_head, resolve_overlap_head_path
from ..matching.dense_scale import MIN_MARGIN, dense_views
from ..matching.view_overlap import ViewOverlap, match_views, sift_views
from .frame import describe

#: ``engine.overlap_head`` value that turns the head off
OFF = "off"
#: keyframe grids embedded per batch when a map is loaded
BATCH = 1024


def load_box_head(path: str, descriptor_dim: int) -> BoxHead | None:
    """The configured head; None when it is switched off, or when the default is asked for and not shipped."""
    if path == OFF or (not path and not resolve_overlap_head_path(path).is_file()):
        return None
    return cached_overlap_head(path, descriptor_dim)[0]


@torch.no_grad()
def embed_grids(head: BoxHead, grids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Boxes (lower, upper; N×d each) of N CX grids, in batches."""
    if len(grids) == 0:
        return torch.zeros((0, head.dims)), torch.zeros((0, head.dims))
    parts = [head(grids[i:i + BATCH].float()) for i in range(0, len(grids), BATCH)]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


@torch.no_grad()
def box_overlaps(head: BoxHead, query_box, keyframe_boxes, rows) -> dict[str, np.ndarray]:
    """Per keyframe ``rows``: overlap of the query in it, of it in the query, and its scale relative to
    the query (how much larger the query shows things than the keyframe)."""
    lo, hi = keyframe_boxes
    idx = torch.as_tensor(np.asarray(rows), dtype=torch.long)
    kf = (lo[idx], hi[idx])
    q = (query_box[0].expand_as(kf[0]), query_box[1].expand_as(kf[1]))
    return {"overlap_query": head.overlap(q, kf).cpu().numpy(), "overlap_keyframe": head.overlap(kf, q).cpu().numpy(),
            "scale": head.scale(kf, q).cpu().numpy()}


def estimate_overlap(rgb_a: np.ndarray, rgb_b: np.ndarray, extractor, cfg: DejavuConfig, head: BoxHead | None,
                     method: str = "auto") -> ViewOverlap:
    """Overlap of A in B, of B in A, and B's scale relative to A.

    ``method``: ``sift`` (a similarity on OpenCV SIFT matches only), ``matches`` (the DVF pyramid matcher
    only), ``dense`` (the dense scale search only), ``boxes`` (head only) or ``auto``: SIFT where its
    keypoints survive, else the pyramid matcher where the DVF maps share structure (day against
    night), else the dense search where its margin reaches ``MIN_MARGIN``, else boxes. Without a
    result: overlaps 0, scale unknown (nan).
    """
    if method in ("auto", "sift"):
        found = sift_views(rgb_a, rgb_b)
        if found is not None or method == "sift":
            return found or ViewOverlap(0.0, 0.0, math.nan, method="none")
    # both DVF searches start from the views' full-size DVF maps: made once
    maps = (extractor.extract(rgb_a), extractor.extract(rgb_b)) if method in ("auto", "matches", "dense") else None
    if method in ("auto", "matches"):
        found = match_views(rgb_a, rgb_b, extractor, cfg.matching, dense=maps)
        if found is not None:
            return found
    if method in ("auto", "dense"):
        found = dense_views(rgb_a, rgb_b, extractor, dense=maps)
        if found is not None and (method == "dense" or found.margin >= MIN_MARGIN):
            return found  # auto takes the dense answer only when it is sure (forced: always)
    if method in ("auto", "boxes") and head is not None:
        a = head(describe(rgb_a, extractor, cfg).grid)
        b = head(describe(rgb_b, extractor, cfg).grid)
        with torch.no_grad():
            return ViewOverlap(float(head.overlap(a, b)[0]), float(head.overlap(b, a)[0]), float(head.scale(a, b)[0]),
                               method="boxes")
    return ViewOverlap(0.0, 0.0, math.nan, method="none")
