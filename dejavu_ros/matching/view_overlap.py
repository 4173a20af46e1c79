"""How much two views share and at what relative scale, from DVF matches over a small scale pyramid.

Why beside the box head: the head answers from each image alone (cheap enough for every keyframe
of a map), but it has to guess how zoomed an unseen scene is. Where the two views share structure,
the dense search finds it — across day and night, since it searches DVF descriptors — and a
similarity transform fitted by RANSAC gives the scale and the footprints exactly. The DVF is not
scale invariant, so the search runs over a pyramid: A's keypoints at scale ``fa`` searched in B's map
at scale ``fb`` for every pair of the ladder with one side at 1 (both ways: A's keypoints in B and
B's in A), and the fit with most inliers wins — if the dense maps confirm it: sparse consensus can be
a cluster of wrong matches plus sky near the corners, while a right alignment makes the descriptors
agree over the whole shared footprint, clearly better than shifted copies of itself.

Conventions (the ``dejavu-ros overlap`` output): ``overlap_ab`` is the fraction of A's surface
visible in B, ``overlap_ba`` the reverse, ``scale`` how much larger B shows things than A relative to
the image size (B a 2× zoom of A → 2).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from .config import MatchingConfig
from .dense_matching import match_dense
from .pipeline import corner_features
from .sampling import sample_descriptors
from .sift import match_sift, sift_features

#: scale ladder of the pyramid (steps of 1.25: the dense search holds up to about ±12 % of scale change):
#: A at 1 with B at each step, and B at 1 with A at each step — relative scales 1/3.3 … 3.3
PYRAMID = (1.0, 0.8, 0.64, 0.51, 0.41, 0.33)
#: smallest RANSAC consensus that counts as shared structure, and its smallest inlier ratio: a wrong
#: match agrees with a 4-DoF similarity within 3 px by chance about once in 3,000 (a 3 px disc of a
#: 320×240 view), so ten that agree are shared structure even when most dense matches are wrong (night)
MIN_INLIERS = 10
MIN_INLIER_RATIO = 0.05
#: RANSAC threshold of the similarity fit, in pixels of the searched pyramid level
THRESHOLD_PX = 3.0
#: keypoints and found positions this close to the image edge are dropped: the network's padding makes
#: pixels near the edge alike in any two images, and they agree with an identity transform (measured on
#: TILDE's hold-out webcam: a day view against a 2.8× zoom of a night frame gave 20 such inliers at the
#: edge; with weak corners in the sky 13 more within 48 px of the corners; 16 px and the engine's corner
#: quality left 0 wrong scales in 24 day/night zoom pairs)
BORDER_PX = 16.0
#: dense agreement test: the aligned descriptor similarity over the shared footprint must beat every one
#: of ``NULL_SHIFTS`` shifted alignments by this margin (sparse consensus alone can be a cluster of
#: wrong matches plus sky near a corner; a right alignment agrees everywhere, day against night too)
AGREEMENT_MARGIN = 0.25
NULL_SHIFTS = 12
AGREEMENT_STEP_PX = 6.0
#: SIFT's similarity fit (:func:`sift_views`): Lowe's ratio and the smallest consensus, looser than
#: the engine's SIFT (0.8) and the DVF matcher's ten. Chosen on 144 zoom pairs of the overlap head's
#: training scenes by a rule fixed first (the most right scales with no wrong one, at a consensus one
#: below which there is no wrong one either): ratio 0.9 at 7 gave 102 right, 0 wrong (0.8 at 10: 92);
#: 0.9 at 5 gave the first wrong ones. At night fewer SIFT matches pass 0.8, and 7 that agree with a
#: similarity within 3 px are still shared structure
SIFT_VIEW_RATIO = 0.9
SIFT_VIEW_MIN_INLIERS = 7
#: :func:`overlap_of_matches`: share of a verification's inliers (already epipolar-consistent) that
#: must agree with one similarity. The raw-match MIN_INLIER_RATIO would pass one plane of a parallax
#: view; not all of a right zoom's inliers agree either (those sliding along its epipolar lines: 31 % of
#: them agreed for a TUM frame against its 1.3× zoom, 46–100 % on the demo street by day)
VERIFIED_SIMILARITY_RATIO = 0.25


@dataclass
class ViewOverlap:
    overlap_ab: float
    overlap_ba: float
    scale: float  # nan when unknown (no shared structure and no head)
    inliers: int = 0
    method: str = "matches"  # sift | matches | dense | boxes | none
    margin: float = math.nan  # dense: how far the best placement beats those a scale step away

    def as_dict(self) -> dict:
        scale = None if not math.isfinite(self.scale) else round(float(self.scale), 4)
        margin = None if not math.isfinite(self.margin) else round(float(self.margin), 4)
        return {"overlap_ab": round(float(self.overlap_ab), 4), "overlap_ba": round(float(self.overlap_ba), 4),
                "scale": scale, "inliers": int(self.inliers), "method": self.method, "margin": margin}


def overlap_from_similarity(m: np.ndarray, size_a: tuple[int, int], size_b: tuple[int, int]) -> ViewOverlap:
    """Overlaps and scale of two views related by a 2×3 similarity ``m`` (A pixels → B pixels)."""
    wa, ha = size_a
    wb, hb = size_b
    corners = np.array([[0, 0], [wa, 0], [wa, ha], [0, ha]], np.float32)
    mapped = (corners @ m[:, :2].T + m[:, 2]).astype(np.float32)
    if np.linalg.det(m[:, :2]) < 0:  # keep the polygon counter-clockwise for the intersection
        mapped = mapped[::-1].copy()
    rect_b = np.array([[0, 0], [wb, 0], [wb, hb], [0, hb]], np.float32)
    inter, _ = cv2.intersectConvexConvex(mapped, rect_b)
    s_px = math.sqrt(abs(float(np.linalg.det(m[:, :2]))))
    area_a, area_b = float(wa * ha), float(wb * hb)
    return ViewOverlap(overlap_ab=min(1.0, inter / max(s_px ** 2, 1e-12) / area_a), overlap_ba=min(1.0, inter / area_b),
                       scale=s_px * math.sqrt(area_a / area_b))


def _resized(rgb: np.ndarray, f: float) -> np.ndarray:
    if abs(f - 1.0) < 1e-6:
        return rgb
    h, w = rgb.shape[:2]
    return cv2.resize(rgb, (max(16, round(w * f)), max(16, round(h * f))), interpolation=cv2.INTER_AREA)


def _level(rgb: np.ndarray, f: float, extractor, cfg: MatchingConfig, cache: dict, full: torch.Tensor | None = None):
    """(dense map, keypoints, their descriptors) of ``rgb`` at pyramid scale ``f``, made once;
    ``full``: the map at scale 1 when the caller has it already."""
    if f not in cache:
        img = _resized(rgb, f)
        dense = full if full is not None and abs(f - 1.0) < 1e-6 else extractor.extract(img)
        xy, desc = corner_features(img, dense, cfg)
        inside = _inside(xy, (img.shape[1], img.shape[0]))
        cache[f] = (dense, xy[inside], desc[torch.as_tensor(inside)])
    return cache[f]


def _inside(xy: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    xy = np.asarray(xy).reshape(-1, 2)
    return ((xy[:, 0] >= BORDER_PX) & (xy[:, 1] >= BORDER_PX) & (xy[:, 0] < size[0] - BORDER_PX)
            & (xy[:, 1] < size[1] - BORDER_PX))


def dense_agreement(src_dense: torch.Tensor, dst_dense: torch.Tensor, m: np.ndarray,
                    rng: np.random.Generator | None = None) -> float:
    """Mean descriptor cosine over the shared footprint under ``m`` (src pixels → dst pixels) minus the
    best of ``NULL_SHIFTS`` alignments shifted by 15–40 % of the view: > 0 when ``m`` explains the
    dense maps better than any shifted copy of itself."""
    rng = rng or np.random.default_rng(0)
    h, w = int(src_dense.shape[1]), int(src_dense.shape[2])
    ys, xs = np.mgrid[BORDER_PX:h - BORDER_PX:AGREEMENT_STEP_PX, BORDER_PX:w - BORDER_PX:AGREEMENT_STEP_PX]
    src = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float32)
    dh, dw = int(dst_dense.shape[1]), int(dst_dense.shape[2])

    def score(shift) -> float:
        dst = src @ m[:, :2].T.astype(np.float32) + m[:, 2].astype(np.float32) + shift
        keep = _inside(dst, (dw, dh))
        if keep.sum() < 20:
            return -1.0
        a = sample_descriptors(src_dense, src[keep])
        b = sample_descriptors(dst_dense, dst[keep])
        return float((a * b).sum(1).mean())

    aligned = score(np.zeros(2, np.float32))
    angles = rng.uniform(0, 2 * np.pi, NULL_SHIFTS)
    radii = rng.uniform(0.15, 0.4, NULL_SHIFTS) * min(dw, dh)
    null = max(score(np.array([r * np.cos(t), r * np.sin(t)], np.float32)) for r, t in zip(radii, angles))
    return aligned - null


def _fit(src_level, dst_level, cfg: MatchingConfig, must_beat: int = 0):
    """(inliers, 2×3 similarity src level pixels → dst level pixels) of an accepted fit with more than
    ``must_beat`` inliers, else None. Accepted: ≥ MIN_INLIERS at ≥ MIN_INLIER_RATIO, and confirmed by the
    dense maps (checked last, only for a fit that could still win)."""
    _dense, xy, desc = src_level
    dst = dst_level[0]
    matches = match_dense(xy, desc, dst, cfg)
    fit = _similarity(matches.subset(_inside(matches.query_xy, (int(dst.shape[2]), int(dst.shape[1])))))
    if fit is None or fit[0] <= must_beat:
        return None
    if dense_agreement(src_level[0], dst, fit[1]) < AGREEMENT_MARGIN:
        return None  # a consensus the dense maps do not confirm
    return fit


def _similarity(matches, min_inliers: int = MIN_INLIERS, threshold_px: float = THRESHOLD_PX,
                min_ratio: float = MIN_INLIER_RATIO) -> tuple[int, np.ndarray] | None:
    """(inliers, 2×3 similarity map_xy → query_xy) fitted by RANSAC, when ≥ ``min_inliers`` agree at ≥
    ``min_ratio``; else None."""
    if len(matches) < min_inliers:
        return None
    m, mask = cv2.estimateAffinePartial2D(matches.map_xy.astype(np.float32), matches.query_xy.astype(np.float32),
                                          method=cv2.RANSAC, ransacReprojThreshold=threshold_px, maxIters=2000,
                                          confidence=0.999)
    if m is None:
        return None
    n = int(mask.sum())
    if n < min_inliers or n / len(matches) < min_ratio:
        return None
    return n, m.astype(np.float64)


def _to_full(m: np.ndarray, f_src: float, f_dst: float) -> np.ndarray:
    """A level-to-level similarity as full-size pixels → full-size pixels: x_d = (m · [f_s·x_s; 1]) / f_d."""
    full = m.copy()
    full[:, :2] *= f_src / f_dst
    full[:, 2] /= f_dst
    return full


def match_views(rgb_a: np.ndarray, rgb_b: np.ndarray, extractor, cfg: MatchingConfig | None = None,
                pyramid=PYRAMID, dense: tuple[torch.Tensor, torch.Tensor] | None = None) -> ViewOverlap | None:
    """Overlap and scale from the best similarity over the pyramid, searched both ways (A's keypoints
    in B and B's in A: the wider view has few keypoints inside the narrower one); None without shared
    structure. ``dense``: the two views' DVF maps at full size, when the caller has them already."""
    cfg = cfg or MatchingConfig()
    cache_a, cache_b = {}, {}
    best = None  # (inliers, A full pixels → B full pixels)
    pairs = [(1.0, f) for f in pyramid] + [(f, 1.0) for f in pyramid if abs(f - 1.0) > 1e-6]
    for fa, fb in pairs:
        level_a = _level(rgb_a, fa, extractor, cfg, cache_a, None if dense is None else dense[0])
        level_b = _level(rgb_b, fb, extractor, cfg, cache_b, None if dense is None else dense[1])
        for forward in (True, False):
            src, dst = (level_a, level_b) if forward else (level_b, level_a)
            fit = _fit(src, dst, cfg, must_beat=0 if best is None else best[0])
            if fit is not None:
                m = _to_full(fit[1], fa, fb) if forward else cv2.invertAffineTransform(_to_full(fit[1], fb, fa))
                best = (fit[0], m)
    if best is None:
        return None
    out = overlap_from_similarity(best[1], (rgb_a.shape[1], rgb_a.shape[0]), (rgb_b.shape[1], rgb_b.shape[0]))
    out.inliers = best[0]
    return out


def sift_views(rgb_a: np.ndarray, rgb_b: np.ndarray, max_features: int = 1000, ratio: float = SIFT_VIEW_RATIO,
               min_inliers: int = SIFT_VIEW_MIN_INLIERS) -> ViewOverlap | None:
    """Overlap and scale from OpenCV SIFT matches (on CLAHE-equalised grey images) and a similarity
    fitted by RANSAC; None without shared structure. SIFT is scale invariant by construction, so no
    pyramid is needed where its keypoints survive the change of condition. Accepted with ≥
    ``min_inliers`` at ≥ MIN_INLIER_RATIO, away from the borders, without the pyramid matcher's dense
    agreement test: the DVF maps of two views 3× apart in scale do not agree even where the alignment
    is right."""
    xy_a, desc_a = sift_features(rgb_a, max_features, equalise=True)  # CLAHE: chosen on tuning pairs, for night
    xy_b, desc_b = sift_features(rgb_b, max_features, equalise=True)
    matches = match_sift(xy_b, desc_b, xy_a, desc_a, ratio)  # "query" B, "map" A: map_xy in A, query_xy in B
    keep = _inside(matches.map_xy, (rgb_a.shape[1], rgb_a.shape[0])) & \
        _inside(matches.query_xy, (rgb_b.shape[1], rgb_b.shape[0]))
    fit = _similarity(matches.subset(keep), min_inliers)
    if fit is None:
        return None
    out = overlap_from_similarity(fit[1], (rgb_a.shape[1], rgb_a.shape[0]), (rgb_b.shape[1], rgb_b.shape[0]))
    out.inliers, out.method = fit[0], "sift"
    return out


def overlap_of_matches(matches, map_size: tuple[int, int], query_size: tuple[int, int]) -> ViewOverlap | None:
    """Overlap and scale of a keyframe (A: ``map_xy``, ``map_size`` pixels) and a query (B: ``query_xy``)
    from matches that already passed the engine's verification: the similarity (zoom, rotation, shift)
    most of them agree with, within THRESHOLD_PX per 320 px of the query's width. None when fewer than
    MIN_INLIERS or less than VERIFIED_SIMILARITY_RATIO of them agree (a view across strong parallax is not
    a zoom and a shift: one plane of it would give a confident, partial scale)."""
    threshold = THRESHOLD_PX * max(1.0, query_size[0] / 320.0)
    fit = _similarity(matches, threshold_px=threshold, min_ratio=VERIFIED_SIMILARITY_RATIO)
    if fit is None:
        return None
    out = overlap_from_similarity(fit[1], map_size, query_size)
    out.inliers = fit[0]
    return out
