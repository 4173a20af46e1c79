"""Geometric verification of matches with OpenCV's robust estimators, and the evidence it yields.

With intrinsics for both images the essential matrix is estimated (five-point solver) on
undistorted rays of each camera, so the two images may come from different cameras or have
different sizes, and ``cv2.recoverPose`` turns it into the query camera's rotation and translation
direction in the keyframe camera frame. Without intrinsics, a fundamental matrix in pixels.

An epipolar model constrains a match to a line, so with many putative matches it finds a few
dozen "inliers" almost anywhere. The statistics kept beside the inlier count say how much they
mean (the trust decision in :mod:`dejavu_ros.relocalization.trust` weighs them): inliers of a
homography on the same matches (point-to-point, far harder to satisfy by chance; a near-planar
or low-parallax view is mostly explained by one), inliers at half and twice the threshold (true
matches sit well inside it, chance ones spread out), how much of the query image the inliers
cover, and whether they lie on a line (a degenerate fit).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from ..geometry import CameraIntrinsics
from .config import MatchingConfig
from .matches import Matches, MatchingError

#: MatchingConfig.ransac → OpenCV flag (the same flags serve findEssentialMat and findFundamentalMat).
ROBUST_METHODS = {
    "ransac": cv2.RANSAC,
    "lmeds": cv2.LMEDS,
    "usac_default": cv2.USAC_DEFAULT,
    "usac_magsac": cv2.USAC_MAGSAC,
    "usac_accurate": cv2.USAC_ACCURATE,
}
#: Fewest correspondences each model's estimator accepts.
MINIMAL_POINTS = {"essential": 5, "fundamental": 8}
#: Inliers closer to a line than this fraction of their extent along it are degenerate.
LINE_SPREAD_MIN = 0.05
#: Cells per side of the query image for the inlier coverage statistic.
COVERAGE_CELLS = 4


@dataclass
class Verification:
    """The published record of one verification: inlier matches in original image pixels."""

    keyframe_id: int
    query_xy: np.ndarray  # (N, 2) inlier pixel positions in the query image
    map_xy: np.ndarray  # (N, 2) the matching positions in the keyframe image
    scores: np.ndarray  # (N,) match confidence in [0, 1]
    num_matches: int  # matches that entered RANSAC
    inlier_ratio: float
    model: str  # "essential" (intrinsics known) or "fundamental"
    matrix: np.ndarray  # (3, 3) E or F
    rotation: np.ndarray | None = None  # (3, 3) query camera w.r.t. keyframe camera (from E)
    translation_dir: np.ndarray | None = None  # (3,) unit vector (from E)
    accepted: bool = False  # passed the geometric checks (the trust decision may still refuse the place)
    stats: dict[str, float] = field(default_factory=dict)  # the statistics of GeometricVerification.stats()

    @property
    def num_inliers(self) -> int:
        return int(len(self.query_xy))


@dataclass
class GeometricVerification:
    """Outcome of RANSAC on one query–keyframe match set.

    ``rotation`` / ``translation_dir`` (essential model only) give the query camera in the
    keyframe camera frame: X_keyframe = rotation @ X_query + s · translation_dir, s > 0 unknown.
    """

    matches: Matches  # everything that entered RANSAC
    inlier_mask: np.ndarray  # (N,) bool
    model: str  # "essential" or "fundamental"
    matrix: np.ndarray  # (3, 3) E or F; zeros when no model was found
    rotation: np.ndarray | None = None
    translation_dir: np.ndarray | None = None
    cheirality_inliers: int = 0  # inliers with positive depth in both cameras (essential only)
    homography_inliers: int = 0  # matches a homography explains within 2 × the threshold
    inliers_half: int = 0  # matches within half the threshold of the final model
    inliers_double: int = 0  # ... within twice the threshold
    coverage: float = 0.0  # fraction of COVERAGE_CELLS² query cells holding an inlier
    spread: float = 0.0  # minor / major axis of the inliers' scatter (0 = on a line)
    accepted: bool = False
    reason: str = ""  # why it was not accepted; empty when accepted

    @property
    def num_matches(self) -> int:
        return len(self.matches)

    @property
    def num_inliers(self) -> int:
        return int(self.inlier_mask.sum())

    @property
    def inlier_ratio(self) -> float:
        return self.num_inliers / self.num_matches if self.num_matches else 0.0

    @property
    def inliers(self) -> Matches:
        return self.matches.subset(self.inlier_mask)

    def stats(self) -> dict[str, float]:
        """The evidence statistics by name (what the trust decision and the reports read)."""
        return {"matches": float(self.num_matches), "inliers": float(self.num_inliers),
                "inlier_ratio": self.inlier_ratio, "inliers_half": float(self.inliers_half),
                "inliers_double": float(self.inliers_double), "homography_inliers": float(self.homography_inliers),
                "coverage": self.coverage, "spread": self.spread,
                "cheirality": (self.cheirality_inliers / self.num_inliers if self.num_inliers else 0.0),
                "essential": float(self.model == "essential"), "accepted": float(self.accepted)}

    def to_verification(self, keyframe_id: int) -> Verification:
        """The result's :class:`Verification` for this keyframe."""
        inl = self.inliers
        return Verification(keyframe_id=int(keyframe_id), query_xy=inl.query_xy, map_xy=inl.map_xy,
                            scores=inl.scores, num_matches=self.num_matches, inlier_ratio=self.inlier_ratio,
                            model=self.model, matrix=self.matrix, rotation=self.rotation,
                            translation_dir=self.translation_dir, accepted=self.accepted, stats=self.stats())


def camera_matrix(camera, name: str) -> tuple[np.ndarray, np.ndarray | None] | None:
    """(K, distortion) from a CameraIntrinsics or a 3×3 array; None when unknown or unusable."""
    if camera is None:
        return None
    if isinstance(camera, CameraIntrinsics):
        k, dist = np.asarray(camera.k, np.float64), camera.distortion
    else:
        k, dist = np.asarray(camera, np.float64), None
    if k.shape != (3, 3):
        raise MatchingError(f"{name}: expected a 3×3 camera matrix, got shape {k.shape}")
    if not (np.all(np.isfinite(k)) and k[0, 0] > 0 and k[1, 1] > 0):
        return None
    return k, (None if dist is None else np.asarray(dist, np.float64))


def verify(matches: Matches, cfg: MatchingConfig | None = None, K_query=None, K_map=None,
           query_size: tuple[int, int] | None = None) -> GeometricVerification:
    """RANSAC (``cfg.ransac``) on ``matches``; accepted with ≥ ``min_inliers`` at ≥ ``min_inlier_ratio``,
    inliers not on a line.

    ``K_query`` / ``K_map``: :class:`~dejavu_ros.geometry.CameraIntrinsics` or 3×3 arrays in the
    pixels of ``matches.query_xy`` / ``matches.map_xy``; ``query_size`` (width, height) of the query
    image, for the coverage statistic (default: the inliers' bounding box). Never raises on too few
    or degenerate matches: the result is simply not accepted, with the reason.
    """
    cfg = cfg or MatchingConfig()
    cam_q, cam_m = camera_matrix(K_query, "K_query"), camera_matrix(K_map, "K_map")
    model = "essential" if cam_q is not None and cam_m is not None else "fundamental"
    n = len(matches)
    result = GeometricVerification(matches=matches, inlier_mask=np.zeros(n, bool), model=model,
                                   matrix=np.zeros((3, 3)))
    if n < MINIMAL_POINTS[model]:  # fewer than min_inliers still runs: a runner-up's evidence is measured
        result.reason = f"{n} matches, fewer than the {max(cfg.min_inliers, MINIMAL_POINTS[model])} needed"
        return result
    q = matches.query_xy.astype(np.float64)
    m = matches.map_xy.astype(np.float64)
    try:
        if model == "essential":
            residual = _fit_essential(result, q, m, cam_q, cam_m, cfg)
        else:
            residual = _fit_fundamental(result, q, m, cfg)
        if not result.reason:
            result.homography_inliers = _homography_inliers(q, m, 2.0 * cfg.ransac_threshold, cfg)
    except cv2.error as exc:  # degenerate input (e.g. all points identical)
        result.reason = f"robust estimation failed: {str(exc).strip().splitlines()[-1]}"
        return result
    if result.reason:
        return result
    result.inliers_half = int((residual <= 0.5 * cfg.ransac_threshold).sum())
    result.inliers_double = int((residual <= 2.0 * cfg.ransac_threshold).sum())
    inlier_xy = q[result.inlier_mask]
    result.coverage = coverage(inlier_xy, query_size)
    result.spread = spread(inlier_xy)
    if result.num_inliers < cfg.min_inliers:
        result.reason = f"{result.num_inliers} inliers < min_inliers {cfg.min_inliers}"
    elif result.inlier_ratio < cfg.min_inlier_ratio:
        result.reason = f"inlier ratio {result.inlier_ratio:.2f} < min_inlier_ratio {cfg.min_inlier_ratio}"
    elif result.spread < LINE_SPREAD_MIN:
        result.reason = f"inliers lie on a line (spread {result.spread:.3f}): a degenerate fit"
    else:
        result.accepted = True
    return result


def coverage(xy: np.ndarray, size: tuple[int, int] | None = None, cells: int = COVERAGE_CELLS) -> float:
    """Fraction of a cells×cells grid over the image (or the points' bounding box) holding a point."""
    if len(xy) == 0:
        return 0.0
    if size is None:
        lo, hi = xy.min(axis=0), xy.max(axis=0)
    else:
        lo, hi = np.zeros(2), np.asarray(size, np.float64)
    span = np.maximum(hi - lo, 1e-9)
    idx = np.clip(((xy - lo) / span * cells).astype(int), 0, cells - 1)
    return len({(int(a), int(b)) for a, b in idx}) / float(cells * cells)


def spread(xy: np.ndarray) -> float:
    """sqrt(λ_min / λ_max) of the points' covariance: 0 on a line, 1 for an isotropic cloud."""
    if len(xy) < 3:
        return 0.0
    eig = np.linalg.eigvalsh(np.cov(np.asarray(xy, np.float64).T))
    return float(np.sqrt(max(eig[0], 0.0) / eig[1])) if eig[1] > 0 else 0.0


def _homography_inliers(q: np.ndarray, m: np.ndarray, threshold: float, cfg: MatchingConfig) -> int:
    if len(q) < 4:
        return 0
    h, mask = cv2.findHomography(m, q, ROBUST_METHODS[cfg.ransac], threshold, maxIters=cfg.ransac_max_iters,
                                 confidence=cfg.ransac_confidence)
    return 0 if h is None or mask is None else int(mask.sum())


def _sampson(f: np.ndarray, q: np.ndarray, m: np.ndarray) -> np.ndarray:
    """First-order geometric distance (px) of matches to F with mᵀ F q = 0 (m: keyframe, q: query)."""
    qh = np.column_stack([q, np.ones(len(q))])
    mh = np.column_stack([m, np.ones(len(m))])
    fq, ftm = qh @ f.T, mh @ f
    num = np.einsum("ij,ij->i", mh, fq) ** 2
    den = fq[:, 0] ** 2 + fq[:, 1] ** 2 + ftm[:, 0] ** 2 + ftm[:, 1] ** 2
    return np.sqrt(num / np.maximum(den, 1e-18))


def _normalised(xy: np.ndarray, camera: tuple[np.ndarray, np.ndarray | None]) -> np.ndarray:
    k, dist = camera
    return cv2.undistortPoints(xy.reshape(-1, 1, 2), k, dist).reshape(-1, 2)


def _fit_essential(result: GeometricVerification, q, m, cam_q, cam_m, cfg: MatchingConfig) -> np.ndarray:
    # Undistorted, normalised rays re-expressed in one virtual pinhole camera (mean focal, principal
    # point 0): both cameras may differ, and the estimators still see pixel-scale residuals
    # (USAC-MAGSAC misbehaves on unit-scale coordinates with a correspondingly tiny threshold).
    focal = float(np.mean([cam_q[0][0, 0], cam_q[0][1, 1], cam_m[0][0, 0], cam_m[0][1, 1]]))
    virtual = np.diag([focal, focal, 1.0])
    qv, mv = _normalised(q, cam_q) * focal, _normalised(m, cam_m) * focal
    e, mask = cv2.findEssentialMat(qv, mv, virtual, method=ROBUST_METHODS[cfg.ransac],
                                   prob=cfg.ransac_confidence, threshold=cfg.ransac_threshold,
                                   maxIters=cfg.ransac_max_iters)
    if e is None or mask is None or e.shape[0] < 3:
        result.reason = "no essential matrix found"
        return np.full(len(q), np.inf)
    inliers = mask.ravel() > 0
    best = None
    for cand in np.split(e[: e.shape[0] // 3 * 3], e.shape[0] // 3):  # the 5-point solver may return several
        good, rot, t, _ = cv2.recoverPose(cand, qv, mv, virtual, mask=inliers.astype(np.uint8).reshape(-1, 1))
        if best is None or good > best[0]:
            best = (good, cand, rot, t)
    good, e, rot, t = best
    result.matrix = e
    result.inlier_mask = inliers
    result.rotation = rot
    result.translation_dir = t.ravel() / max(np.linalg.norm(t), 1e-12)
    result.cheirality_inliers = int(good)
    k_inv = np.linalg.inv(virtual)
    return _sampson(k_inv.T @ e @ k_inv, qv, mv)


def _fit_fundamental(result: GeometricVerification, q, m, cfg: MatchingConfig) -> np.ndarray:
    f, mask = cv2.findFundamentalMat(q, m, ROBUST_METHODS[cfg.ransac], cfg.ransac_threshold,
                                     cfg.ransac_confidence, cfg.ransac_max_iters)
    if f is None or mask is None or f.shape[0] < 3:
        result.reason = "no fundamental matrix found"
        return np.full(len(q), np.inf)
    result.matrix = f[:3]
    result.inlier_mask = mask.ravel() > 0
    return _sampson(result.matrix, q, m)
