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
from ..matching.view_overlap import overlap_of_matches
from .result import Candidate


def overlap_fields(k: int, checked: dict[int, tuple[GeometricVerification, object]], query_size: tuple[int, int],
                   head: dict[str, np.ndarray] | None) -> dict[str, float]:
    """``Candidate`` overlap and scale of candidate ``k``: the query's view that the keyframe shows, and how
    much larger the query shows things (fitted only for the candidates that are reported)."""
    if k in checked and checked[k][0].accepted:
        geo, kf = checked[k]
        view = overlap_of_matches(geo.inliers, tuple(kf.image_size), tuple(query_size))
        if view is not None:
            return {"overlap": float(view.overlap_ba), "scale": float(view.scale)}
    if head is not None:
        return {"overlap": float(head["overlap_query"][k]), "scale": float(head["scale"][k])}
    return {}


def ranked_candidates(rows: np.ndarray, ids: np.ndarray, positions: np.ndarray, orientations: np.ndarray,
                      cx: np.ndarray, shortlist: np.ndarray, confidence: np.ndarray,
                      checked: dict[int, tuple[GeometricVerification, object]], query_size: tuple[int, int],
                      head: dict[str, np.ndarray] | None, top_k: int) -> list[Candidate]:
    """The best ``top_k`` of ``rows`` (map rows in CX order) as reported candidates."""
    return [Candidate(keyframe_id=int(ids[rows[k]]), rank=k, shortlist_score=float(shortlist[k]),
                      cx_score=float(cx[k]), position=positions[rows[k]].copy(),
                      orientation=orientations[rows[k]].copy(),
                      inliers=checked[k][0].num_inliers if k in checked else 0, confidence=float(confidence[k]),
                      **overlap_fields(k, checked, query_size, head))
            for k in range(min(top_k, len(rows)))]
