"""Metric pose of the query camera from the keyframe's 3-D corners (PnP RANSAC) with a covariance.

Covariance choice: first-order (Gauss-Newton) propagation of reprojection noise,
``cov = σ² (JᵀJ)⁻¹``, where J is the Jacobian of the inliers' reprojections with respect to the
six pose parameters and σ² the residual variance of the inliers (Σr² / (2N − 6)), floored at
``pnp_min_sigma_px`` so that a handful of perfectly fitting points cannot claim certainty. It
grows when inliers are few, badly spread or far away, which is what a fusion filter needs to know.
It ignores outliers that RANSAC let through and the keyframe's own depth errors.

Pose parameters, in the order of a ROS covariance (x, y, z, roll, pitch, yaw): the query camera's
position in the keyframe camera frame, and small rotations about that frame's fixed X, Y, Z axes
(R ← exp([δ]×) R).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from .config import MatchingConfig
from .matches import Matches, MatchingError, as_xy
from .verification import camera_matrix


@dataclass
class PnPResult:
    """Query camera pose in the keyframe camera frame: X_keyframe = rotation @ X_query + translation."""

    rotation: np.ndarray  # (3, 3)
    translation: np.ndarray  # (3,) query camera centre in the keyframe camera frame (metres)
    covariance: np.ndarray  # (6, 6) x y z roll pitch yaw
    inlier_mask: np.ndarray  # (N,) bool over the correspondences given
    reprojection_rms: float  # px, over the inliers
    accepted: bool = False
    reason: str = ""

    @property
    def num_inliers(self) -> int:
        return int(self.inlier_mask.sum())

    def in_map_frame(self, keyframe_position, keyframe_orientation_xyzw, keyframe_covariance=None):
        """(position (3,), orientation xyzw (4,), covariance (6, 6)) of the query camera in the map.

        The keyframe pose is the keyframe *camera* pose in the map frame; its covariance, when
        given, is added (the two errors are independent to first order).
        """
        r_mk = Rotation.from_quat(np.asarray(keyframe_orientation_xyzw, np.float64)).as_matrix()
        position = np.asarray(keyframe_position, np.float64) + r_mk @ self.translation
        orientation = Rotation.from_matrix(r_mk @ self.rotation).as_quat()
        rot6 = np.zeros((6, 6))
        rot6[:3, :3] = rot6[3:, 3:] = r_mk
        cov = rot6 @ self.covariance @ rot6.T
        if keyframe_covariance is not None:
            cov = cov + np.asarray(keyframe_covariance, np.float64)
        return position, orientation, cov


def _failed(n: int, reason: str) -> PnPResult:
    return PnPResult(rotation=np.eye(3), translation=np.zeros(3), covariance=np.eye(6) * 1e6,
                     inlier_mask=np.zeros(n, bool), reprojection_rms=float("inf"), reason=reason)


def solve_pnp(image_xy, object_xyz, K_query, cfg: MatchingConfig | None = None) -> PnPResult:
    """Pose of the camera that saw 3-D points ``object_xyz`` (N, 3, keyframe camera frame, NaN rows
    = unknown depth, ignored) at pixels ``image_xy`` (N, 2). Never raises on too few points."""
    cfg = cfg or MatchingConfig()
    xy = as_xy(image_xy, "image_xy").astype(np.float64)
    xyz = np.asarray(object_xyz, np.float64).reshape(-1, 3) if np.size(object_xyz) else np.zeros((0, 3))
    if len(xyz) != len(xy):
        raise MatchingError(f"solve_pnp: {len(xy)} image points but {len(xyz)} 3-D points")
    cam = camera_matrix(K_query, "K_query")
    n = len(xy)
    if cam is None:
        return _failed(n, "query intrinsics unknown")
    known = np.all(np.isfinite(xyz), axis=1)
    idx = np.flatnonzero(known)
    need = max(cfg.pnp_min_inliers, 6)
    if len(idx) < need:
        return _failed(n, f"{len(idx)} matches with 3-D points, fewer than the {need} needed")
    k, dist = cam
    try:
        ok, rvec, tvec, inl = cv2.solvePnPRansac(
            xyz[idx], xy[idx], k, dist, iterationsCount=cfg.ransac_max_iters,
            reprojectionError=cfg.pnp_reprojection_px, confidence=cfg.ransac_confidence,
            flags=cv2.SOLVEPNP_SQPNP)
    except cv2.error as exc:
        return _failed(n, f"PnP failed: {str(exc).strip().splitlines()[-1]}")
    if not ok or inl is None or len(inl) < 4:
        return _failed(n, "PnP RANSAC found no pose")
    sel = idx[inl.ravel()]
    rvec, tvec = cv2.solvePnPRefineLM(xyz[sel], xy[sel], k, dist, rvec, tvec)
    # Re-score every known point against the refined pose (RANSAC's set came from a minimal sample).
    residual = np.full(n, np.inf)
    residual[idx] = _reprojection_error(xyz[idx], xy[idx], rvec, tvec, k, dist)
    mask = residual <= cfg.pnp_reprojection_px
    r_qk = cv2.Rodrigues(rvec)[0]
    rotation = r_qk.T
    translation = (-r_qk.T @ tvec).ravel()
    rms = float(np.sqrt(np.mean(residual[mask] ** 2))) if mask.any() else float("inf")
    cov = pose_covariance(rotation, translation, xyz[mask], xy[mask], k, dist, cfg.pnp_min_sigma_px)
    result = PnPResult(rotation=rotation, translation=translation, covariance=cov, inlier_mask=mask,
                       reprojection_rms=rms)
    if result.num_inliers < cfg.pnp_min_inliers:
        result.reason = f"{result.num_inliers} PnP inliers < pnp_min_inliers {cfg.pnp_min_inliers}"
    else:
        result.accepted = True
    return result


def estimate_pnp(matches: Matches, keyframe_points3d, K_query,
                 cfg: MatchingConfig | None = None) -> PnPResult:
    """:func:`solve_pnp` on matches whose keyframe corner has a 3-D point (``keyframe_points3d``, (K, 3))."""
    pts = np.asarray(keyframe_points3d, np.float64) if keyframe_points3d is not None else np.zeros((0, 3))
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise MatchingError(f"keyframe_points3d: expected shape (K, 3), got {pts.shape}")
    if len(matches) and matches.map_idx.max() >= len(pts):
        raise MatchingError(f"keyframe_points3d: {len(pts)} points but matches index corner "
                            f"{int(matches.map_idx.max())}")
    xyz = np.full((len(matches), 3), np.nan)
    corner = matches.map_idx >= 0  # SIFT matches (map_idx -1) have no keyframe corner, so no 3-D point
    xyz[corner] = pts[matches.map_idx[corner]]
    return solve_pnp(matches.query_xy, xyz, K_query, cfg)


def _project(xyz, rvec, tvec, k, dist) -> np.ndarray:
    return cv2.projectPoints(xyz.reshape(-1, 1, 3), rvec, tvec, k, dist)[0].reshape(-1, 2)


def _reprojection_error(xyz, xy, rvec, tvec, k, dist) -> np.ndarray:
    err = np.linalg.norm(_project(xyz, rvec, tvec, k, dist) - xy, axis=1)
    behind = (xyz @ cv2.Rodrigues(rvec)[0].T + tvec.reshape(1, 3))[:, 2] <= 0
    err[behind] = np.inf
    return err


def pose_covariance(rotation, translation, xyz, xy, k, dist, min_sigma_px: float) -> np.ndarray:
    """6×6 covariance of (position, rotation about fixed axes) of the camera pose; see module doc."""
    if len(xyz) < 4:
        return np.eye(6) * 1e6

    def reproject(params: np.ndarray) -> np.ndarray:
        rot = Rotation.from_rotvec(params[3:]).as_matrix() @ rotation
        pos = translation + params[:3]
        r_qk = rot.T
        return _project(xyz, cv2.Rodrigues(r_qk)[0], -r_qk @ pos, k, dist).ravel()

    scale = max(1.0, float(np.linalg.norm(translation)))
    steps = np.array([1e-6 * scale] * 3 + [1e-6] * 3)
    jac = np.empty((2 * len(xyz), 6))
    for i in range(6):
        d = np.zeros(6)
        d[i] = steps[i]
        jac[:, i] = (reproject(d) - reproject(-d)) / (2 * steps[i])
    residual = reproject(np.zeros(6)) - xy.ravel()
    dof = max(2 * len(xyz) - 6, 1)
    sigma2 = max(float(residual @ residual) / dof, min_sigma_px ** 2)
    return sigma2 * np.linalg.pinv(jac.T @ jac)
