"""Geometric verification of matches with OpenCV's robust estimators.

With intrinsics for both images the essential matrix is estimated (five-point solver) on
undistorted rays of each camera, so the two images may come from different cameras or have
different sizes, and ``cv2.recoverPose`` turns it into the query camera's rotation and translation
direction in the keyframe camera frame. Without intrinsics, a fundamental matrix in pixels.
Inliers are the robust estimator's; the cheirality count is reported but not used to filter.
"""
from __future__ import annotations

from dataclasses import dataclass

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

    def to_verification(self, keyframe_id: int):
        """The engine's :class:`~dejavu_ros.relocalization.result.Verification` for this keyframe."""
        from ..relocalization.result import Verification  # late: the engine package imports this one

        inl = self.inliers
        return Verification(keyframe_id=int(keyframe_id), query_xy=inl.query_xy, map_xy=inl.map_xy,
                            scores=inl.scores, num_matches=self.num_matches, inlier_ratio=self.inlier_ratio,
                            model=self.model, matrix=self.matrix, rotation=self.rotation,
                            translation_dir=self.translation_dir, accepted=self.accepted)


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


def verify(matches: Matches, cfg: MatchingConfig | None = None, K_query=None,
           K_map=None) -> GeometricVerification:
    """RANSAC (``cfg.ransac``) on ``matches``; accepted with ≥ ``min_inliers`` at ≥ ``min_inlier_ratio``.

    ``K_query`` / ``K_map``: :class:`~dejavu_ros.geometry.CameraIntrinsics` or 3×3 arrays in the
    pixels of ``matches.query_xy`` / ``matches.map_xy``. Never raises on too few or degenerate
    matches: the result is simply not accepted, with the reason.
    """
    cfg = cfg or MatchingConfig()
    cam_q, cam_m = camera_matrix(K_query, "K_query"), camera_matrix(K_map, "K_map")
    model = "essential" if cam_q is not None and cam_m is not None else "fundamental"
    n = len(matches)
    result = GeometricVerification(matches=matches, inlier_mask=np.zeros(n, bool), model=model,
                                   matrix=np.zeros((3, 3)))
    if n < max(cfg.min_inliers, MINIMAL_POINTS[model]):
        result.reason = f"{n} matches, fewer than the {max(cfg.min_inliers, MINIMAL_POINTS[model])} needed"
        return result
    q = matches.query_xy.astype(np.float64)
    m = matches.map_xy.astype(np.float64)
    try:
        if model == "essential":
            _fit_essential(result, q, m, cam_q, cam_m, cfg)
        else:
            _fit_fundamental(result, q, m, cfg)
    except cv2.error as exc:  # degenerate input (e.g. all points identical)
        result.reason = f"robust estimation failed: {str(exc).strip().splitlines()[-1]}"
        return result
    if result.reason:
        return result
    if result.num_inliers < cfg.min_inliers:
        result.reason = f"{result.num_inliers} inliers < min_inliers {cfg.min_inliers}"
    elif result.inlier_ratio < cfg.min_inlier_ratio:
        result.reason = f"inlier ratio {result.inlier_ratio:.2f} < min_inlier_ratio {cfg.min_inlier_ratio}"
    else:
        result.accepted = True
    return result


def _normalised(xy: np.ndarray, camera: tuple[np.ndarray, np.ndarray | None]) -> np.ndarray:
    k, dist = camera
    return cv2.undistortPoints(xy.reshape(-1, 1, 2), k, dist).reshape(-1, 2)


def _fit_essential(result: GeometricVerification, q, m, cam_q, cam_m, cfg: MatchingConfig) -> None:
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
        return
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


def _fit_fundamental(result: GeometricVerification, q, m, cfg: MatchingConfig) -> None:
    f, mask = cv2.findFundamentalMat(q, m, ROBUST_METHODS[cfg.ransac], cfg.ransac_threshold,
                                     cfg.ransac_confidence, cfg.ransac_max_iters)
    if f is None or mask is None or f.shape[0] < 3:
        result.reason = "no fundamental matrix found"
        return
    result.matrix = f[:3]
    result.inlier_mask = mask.ravel() > 0
