"""PnP RANSAC on keyframe 3-D corners: pose of the query camera in the keyframe frame, covariance."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from matching_support import project

from dejavu_ros.matching import Matches, MatchingConfig, MatchingError, estimate_pnp, solve_pnp

K = np.array([[520.0, 0, 320], [0, 520.0, 240], [0, 0, 1]])
R_KQ = Rotation.from_euler("xyz", [4.0, -10.0, 2.0], degrees=True).as_matrix()
T_KQ = np.array([0.4, -0.1, 0.3])


def scene(n=150, noise=0.5, outliers=30, unknown=20, seed=0):
    """3-D corners in the keyframe camera frame, their pixels in the query, some wrong, some depthless."""
    rng = np.random.default_rng(seed)
    pts = np.column_stack([rng.uniform(-3, 3, n), rng.uniform(-2, 2, n), rng.uniform(4, 12, n)])
    xy = project(pts, R_KQ, T_KQ, K) + rng.normal(0, noise, (n, 2)).astype(np.float32)
    bad = rng.choice(n, outliers, replace=False)
    xy[bad] = rng.uniform([0, 0], [640, 480], (outliers, 2))
    good = np.ones(n, bool)
    good[bad] = False
    pts3 = pts.astype(np.float32)
    pts3[rng.choice(np.flatnonzero(good), unknown, replace=False)] = np.nan
    good &= np.isfinite(pts3).all(axis=1)
    return xy, pts3, good


def rotation_error_deg(r):
    return np.degrees(np.linalg.norm(Rotation.from_matrix(r @ R_KQ.T).as_rotvec()))


def test_pnp_recovers_a_known_pose_despite_outliers_and_unknown_depths():
    xy, pts, good = scene()
    res = solve_pnp(xy, pts, K, MatchingConfig())
    assert res.accepted, res.reason
    assert rotation_error_deg(res.rotation) < 0.2
    assert np.linalg.norm(res.translation - T_KQ) < 0.02
    assert np.array_equal(res.inlier_mask[good], np.ones(good.sum(), bool))
    assert res.inlier_mask[~good].sum() <= 2  # NaN rows are never inliers; random pixels rarely are
    assert res.reprojection_rms < 1.0


def test_covariance_is_symmetric_positive_and_reflects_the_evidence():
    xy, pts, _ = scene(outliers=0, unknown=0)
    cov = solve_pnp(xy, pts, K).covariance
    assert cov.shape == (6, 6) and np.allclose(cov, cov.T)
    assert np.all(np.linalg.eigvalsh(cov) > 0)
    few = solve_pnp(xy[:20], pts[:20], K).covariance
    noisy_xy, noisy_pts, _ = scene(noise=3.0, outliers=0, unknown=0)
    noisy = solve_pnp(noisy_xy, noisy_pts, K, MatchingConfig(pnp_reprojection_px=12.0)).covariance
    assert np.trace(few) > 2 * np.trace(cov)
    assert np.trace(noisy) > 10 * np.trace(cov)
    # The claimed spread is of the order of the actual error over repeated noisy trials.
    errors = []
    for seed in range(8):
        x, p, _ = scene(noise=1.0, outliers=0, unknown=0, seed=seed)
        errors.append(solve_pnp(x, p, K).translation - T_KQ)
    actual = np.sqrt(np.mean(np.square(errors)))
    x, p, _ = scene(noise=1.0, outliers=0, unknown=0)
    claimed = np.sqrt(np.mean(np.diag(solve_pnp(x, p, K).covariance)[:3]))
    assert claimed / 4 < actual < claimed * 4


def test_pose_in_map_frame_composes_with_the_keyframe_pose():
    xy, pts, _ = scene(outliers=0, unknown=0)
    res = solve_pnp(xy, pts, K)
    q_mk = Rotation.from_euler("z", 90, degrees=True)
    pos, quat, cov = res.in_map_frame([10.0, 5.0, 0.0], q_mk.as_quat(), keyframe_covariance=np.eye(6) * 1e-4)
    assert np.allclose(pos, [10.0, 5.0, 0.0] + q_mk.apply(res.translation))
    want = (q_mk * Rotation.from_matrix(res.rotation)).as_quat()
    assert min(np.abs(quat - want).max(), np.abs(quat + want).max()) < 1e-9
    # A 90° yaw swaps the x and y variances (plus the keyframe's own uncertainty).
    assert np.isclose(cov[0, 0], res.covariance[1, 1] + 1e-4)
    assert np.isclose(cov[1, 1], res.covariance[0, 0] + 1e-4)


def test_estimate_pnp_looks_up_the_matched_keyframe_corners():
    xy, pts, good = scene(outliers=0)
    order = np.random.default_rng(5).permutation(len(xy))[:100]  # matches hit a subset, shuffled
    n = len(order)
    matches = Matches(query_xy=xy[order], map_xy=np.zeros((n, 2), np.float32), map_idx=order,
                      query_idx=np.full(n, -1), distance=np.zeros(n, np.float32),
                      ratio=np.zeros(n, np.float32), direction="dense")
    res = estimate_pnp(matches, pts, K)
    assert res.accepted and rotation_error_deg(res.rotation) < 0.3
    assert np.array_equal(res.inlier_mask, good[order])
    with pytest.raises(MatchingError, match="keyframe_points3d"):
        estimate_pnp(matches, pts[:10], K)


@pytest.mark.parametrize("case", ["no_intrinsics", "all_nan", "too_few", "empty"])
def test_pnp_failures_are_results_not_exceptions(case):
    xy, pts, _ = scene(outliers=0, unknown=0)
    k = K
    if case == "no_intrinsics":
        k = None
    elif case == "all_nan":
        pts = np.full_like(pts, np.nan)
    elif case == "too_few":
        xy, pts = xy[:5], pts[:5]
    elif case == "empty":
        xy, pts = xy[:0], pts[:0]
    res = solve_pnp(xy, pts, k)
    assert not res.accepted and res.reason and res.num_inliers == 0
    assert res.inlier_mask.shape == (len(xy),)
