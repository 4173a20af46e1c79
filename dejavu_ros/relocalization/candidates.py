"""The ranked candidates a frame reports: their scores, verification, and how much they share of the view.

Each candidate's overlap and scale (``Candidate.overlap``, ``Candidate.scale``) come from the best
source the engine has for it: a keyframe that passed the geometric verification from the similarity
its inlier matches agree with (matching/view_overlap.py: ``overlap_of_matches``; exact for a zoom
and a shift, where most of the view lies at one depth), any other from the overlap head
(``engine.overlap_head``) when one is loaded, else NaN.
"""
from __future__ import annotations

import numpy as np

from ..matching.verification import GeometricVerification
from ..matching.view_overlap import ViewOverlap, overlap_of_matches
from .result import Candidate


def verified_views(checked: dict[int, tuple[GeometricVerification, object]],
                   query_size: tuple[int, int]) -> dict[int, ViewOverlap]:
    """Per accepted verification (its index into the candidates): the overlap and scale of its inliers."""
    views = {}
    for k, (geo, kf) in checked.items():
        if geo.accepted:
            view = overlap_of_matches(geo.inliers, tuple(kf.image_size), tuple(query_size))
            if view is not None:
                views[k] = view
    return views


def overlap_fields(k: int, views: dict[int, ViewOverlap], head: dict[str, np.ndarray] | None) -> dict[str, float]:
    """``Candidate`` overlap and scale of candidate ``k``: the query's view that the keyframe shows, and how
    much larger the query shows things."""
    if k in views:
        return {"overlap": float(views[k].overlap_ba), "scale": float(views[k].scale)}
    if head is not None:
        return {"overlap": float(head["overlap_query"][k]), "scale": float(head["scale"][k])}
    return {}


def ranked_candidates(rows: np.ndarray, ids: np.ndarray, positions: np.ndarray, orientations: np.ndarray,
                      cx: np.ndarray, shortlist: np.ndarray, confidence: np.ndarray,
                      checked: dict[int, tuple[GeometricVerification, object]], views: dict[int, ViewOverlap],
                      head: dict[str, np.ndarray] | None, top_k: int) -> list[Candidate]:
    """The best ``top_k`` of ``rows`` (map rows in CX order) as reported candidates."""
    return [Candidate(keyframe_id=int(ids[rows[k]]), rank=k, shortlist_score=float(shortlist[k]),
                      cx_score=float(cx[k]), position=positions[rows[k]].copy(),
                      orientation=orientations[rows[k]].copy(),
                      inliers=checked[k][0].num_inliers if k in checked else 0, confidence=float(confidence[k]),
                      **overlap_fields(k, views, head))
            for k in range(min(top_k, len(rows)))]
