"""SIFT keypoints (OpenCV) beside the DVF matches: ``matching.method`` sift or dvf+sift.

DVF descriptors are invariant where intensity changes most (night, season), SIFT localises
keypoints precisely where the texture survives; the hybrid hands both match sets to one RANSAC, so
each contributes where it is strong (benchmarks/bench_matching_webcams.py measures each alone and
together). Keyframes store their SIFT keypoints and descriptors (uint8, as OpenCV quantises them
anyway) when the map is built with a method that uses them.
"""
from __future__ import annotations

import cv2
import numpy as np

from .config import MatchingConfig
from .corners import to_gray
from .matches import Matches

#: Lowe's ratio for SIFT (its own distance scale: the DVF ratio does not carry over)
SIFT_RATIO = 0.8


#: CLAHE (OpenCV) before SIFT where asked: clip limit and tiles; it lifts dark frames' texture above
#: SIFT's contrast threshold
CLAHE_CLIP, CLAHE_TILES = 2.0, (8, 8)


def sift_features(image: np.ndarray, max_features: int = 500, equalise: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(K, 2) float32 keypoint positions and (K, 128) uint8 descriptors of an RGB or grey image;
    ``equalise``: local histogram equalisation (CLAHE) of the grey image first."""
    gray = to_gray(image)
    if gray.dtype != np.uint8:
        gray = np.clip(gray, 0, 255).astype(np.uint8)
    if equalise:
        gray = cv2.createCLAHE(CLAHE_CLIP, CLAHE_TILES).apply(gray)
    keypoints, desc = cv2.SIFT_create(nfeatures=int(max_features)).detectAndCompute(gray, None)
    if desc is None or not keypoints:
        return np.zeros((0, 2), np.float32), np.zeros((0, 128), np.uint8)
    xy = np.array([k.pt for k in keypoints], np.float32).reshape(-1, 2)
    return xy, np.clip(np.rint(desc), 0, 255).astype(np.uint8)


def match_sift(query_xy: np.ndarray, query_desc: np.ndarray, map_xy: np.ndarray, map_desc: np.ndarray,
               ratio: float = SIFT_RATIO) -> Matches:
    """Mutual nearest neighbours with Lowe's ratio test. ``map_idx`` is -1: a SIFT keypoint is not a
    keyframe corner, so it has no 3-D point for PnP."""
    counts = {"sift_query": len(query_xy), "sift_map": len(map_xy)}
    if len(query_desc) < 2 or len(map_desc) < 2:
        return Matches.empty("sift", counts | {"sift_ratio": 0})
    q, m = query_desc.astype(np.float32), map_desc.astype(np.float32)
    matcher = cv2.BFMatcher(cv2.NORM_L2)
    pairs = matcher.knnMatch(q, m, k=2)
    back = {p.queryIdx: p.trainIdx for p in matcher.match(m, q)}  # map → query nearest, for the mutual check
    keep = [(a.queryIdx, a.trainIdx, a.distance / max(b.distance, 1e-9)) for a, b in (p for p in pairs if len(p) == 2)
            if a.distance < ratio * b.distance and back.get(a.trainIdx) == a.queryIdx]
    counts["sift_ratio"] = len(keep)
    if not keep:
        return Matches.empty("sift", counts)
    qi, mi, r = (np.array(v) for v in zip(*keep))
    return Matches(query_xy=query_xy[qi].astype(np.float32), map_xy=map_xy[mi].astype(np.float32),
                   map_idx=np.full(len(qi), -1, np.int64), query_idx=qi.astype(np.int64),
                   distance=np.zeros(len(qi), np.float32), ratio=r.astype(np.float32), direction="sift",
                   counts=counts)


def uses_sift(cfg: MatchingConfig) -> bool:
    return "sift" in cfg.method


def uses_dvf(cfg: MatchingConfig) -> bool:
    return "dvf" in cfg.method
