"""Geometric verification: essential matrix with intrinsics, fundamental without, and failure cases."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from matching_support import TUM_K, project, sift_at

from conftest import shared
from dejavu_ros.geometry import CameraIntrinsics
from dejavu_ros.matching import (GeometricVerification, Matches, MatchingConfig, MatchingError,
                                 detect_corners, match_corners, match_to_keyframe, verify)
from dejavu_ros.matching.verification import Verification

K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])


def make_matches(query_xy, map_xy) -> Matches:
    n = len(query_xy)
    return Matches(query_xy=np.asarray(query_xy, np.float32), map_xy=np.asarray(map_xy, np.float32),
                   map_idx=np.arange(n), query_idx=np.arange(n), distance=np.zeros(n, np.float32),
                   ratio=np.full(n, 0.5, np.float32), direction="corners")


def two_view(n=200, outliers=60, seed=0):
    """Keyframe camera at the origin; query camera moved and turned. Returns matches and the truth."""
    rng = np.random.default_rng(seed)
    pts = np.column_stack([rng.uniform(-3, 3, n), rng.uniform(-2, 2, n), rng.uniform(4, 10, n)])
    r_kq = Rotation.from_euler("xyz", [2.0, -6.0, 3.0], degrees=True).as_matrix()
    t_kq = np.array([0.6, 0.1, 0.2])
    map_xy = project(pts, np.eye(3), np.zeros(3), K) + rng.normal(0, 0.3, (n, 2))
    query_xy = project(pts, r_kq, t_kq, K) + rng.normal(0, 0.3, (n, 2))
    bad = rng.choice(n, outliers, replace=False)
    query_xy[bad] = rng.uniform([0, 0], [640, 480], (outliers, 2))
    truth = np.ones(n, bool)
    truth[bad] = False
    return make_matches(query_xy, map_xy), r_kq, t_kq / np.linalg.norm(t_kq), truth


@pytest.mark.parametrize("method", ["usac_magsac", "usac_default", "usac_accurate", "ransac", "lmeds"])
def test_essential_matrix_recovers_relative_pose(method):
    matches, r_kq, t_dir, truth = two_view(outliers=40 if method == "lmeds" else 60)
    gv = verify(matches, MatchingConfig(ransac=method), K, K)
    assert gv.model == "essential" and gv.accepted, gv.reason
    angle = np.degrees(np.linalg.norm(Rotation.from_matrix(gv.rotation @ r_kq.T).as_rotvec()))
    assert angle < (0.5 if method.startswith("usac") else 1.5)  # USAC adds local optimisation
    assert np.degrees(np.arccos(np.clip(gv.translation_dir @ t_dir, -1, 1))) < 5.0
    assert (gv.inlier_mask & truth).sum() > 0.9 * truth.sum()
    assert (gv.inlier_mask & ~truth).sum() <= 3
    assert gv.cheirality_inliers > 0.8 * truth.sum()


def test_intrinsics_may_differ_and_be_camera_info_objects():
    matches, r_kq, _, _ = two_view()
    # The query image was taken at half resolution: its pixels and intrinsics both halve.
    k_half = K.copy()
    k_half[:2] *= 0.5
    half = make_matches(matches.query_xy * 0.5, matches.map_xy)
    cam = CameraIntrinsics(k=k_half, width=320, height=240)
    gv = verify(half, MatchingConfig(ransac_threshold=1.0), cam, K)
    assert gv.accepted, gv.reason
    angle = np.degrees(np.linalg.norm(Rotation.from_matrix(gv.rotation @ r_kq.T).as_rotvec()))
    assert angle < 1.0


def test_fundamental_matrix_without_intrinsics():
    matches, _, _, truth = two_view()
    gv = verify(matches, MatchingConfig(), K_query=None, K_map=np.full((3, 3), np.nan))
    assert gv.model == "fundamental" and gv.accepted and gv.rotation is None
    assert (gv.inlier_mask & truth).sum() > 0.9 * truth.sum() and (gv.inlier_mask & ~truth).sum() <= 3
    q = np.column_stack([matches.query_xy, np.ones(len(matches))])
    m = np.column_stack([matches.map_xy, np.ones(len(matches))])
    algebraic = np.abs(np.einsum("ij,jk,ik->i", m, gv.matrix, q))
    assert np.median(algebraic[truth]) < np.median(algebraic[~truth]) / 20


def test_acceptance_thresholds():
    matches, *_ = two_view(n=60, outliers=40)  # 20 true matches among 60
    assert not verify(matches, MatchingConfig(min_inlier_ratio=0.5), K, K).accepted
    strict = verify(matches, MatchingConfig(min_inliers=30, min_inlier_ratio=0.0), K, K)
    assert not strict.accepted and "min_inliers" in strict.reason
    assert verify(matches, MatchingConfig(min_inliers=15, min_inlier_ratio=0.25), K, K).accepted


@pytest.mark.parametrize("n", [0, 3, 10])
def test_too_few_matches_are_not_accepted_without_error(n):
    matches, *_ = two_view(n=max(n, 1), outliers=0)
    matches = matches.subset(np.arange(n))
    for k in (K, None):
        gv = verify(matches, MatchingConfig(), k, k)
        assert not gv.accepted and gv.reason
        v = gv.to_verification(keyframe_id=7)
        assert isinstance(v, Verification) and not v.accepted
        if n < 5:  # below the minimal sample of any model: nothing is estimated
            assert gv.num_inliers == 0 and gv.inlier_ratio == 0.0 and v.num_inliers == 0
        else:  # a model is fitted (a runner-up's evidence is measured) but too few inliers are accepted
            assert "min_inliers" in gv.reason and gv.num_inliers <= n


def test_degenerate_points_are_not_accepted_without_error():
    same = make_matches(np.full((40, 2), 100.0), np.full((40, 2), 120.0))
    for k in (K, None):
        assert not verify(same, MatchingConfig(), k, k).accepted


def test_conversion_to_the_engine_result():
    matches, *_ = two_view()
    gv = verify(matches, MatchingConfig(), K, K)
    v = gv.to_verification(keyframe_id=42)
    assert v.keyframe_id == 42 and v.accepted and v.model == "essential"
    assert v.num_matches == len(matches) and v.num_inliers == gv.num_inliers
    assert np.array_equal(v.query_xy, matches.query_xy[gv.inlier_mask])
    assert v.scores.shape == (gv.num_inliers,) and np.all((v.scores >= 0) & (v.scores <= 1))
    assert np.isclose(v.inlier_ratio, gv.inlier_ratio)
    with pytest.raises(MatchingError, match="K_query"):
        verify(matches, MatchingConfig(), np.eye(2), K)


@pytest.fixture(scope="module")
def tum_describer():
    """Describes a TUM frame as (corners, descriptors, dense map or None): with the shipped default
    DVF model when present (then the full corner pipeline with the stability test runs), else with
    SIFT descriptors at the Shi-Tomasi corners (geometry path only)."""
    from dejavu_ros.resources import default_model_path

    if default_model_path().is_file():
        from dejavu_ros.features.config import FeatureConfig
        from dejavu_ros.features.extractor import FeatureExtractor
        from dejavu_ros.matching import corner_features

        extractor = FeatureExtractor.from_config(FeatureConfig(device="cpu"))

        def describe_dvf(rgb):
            dense = extractor.extract(rgb)
            return (*corner_features(rgb, dense), dense)
        return "dvf", describe_dvf

    def describe_sift(rgb):
        xy = detect_corners(rgb)
        return xy, sift_at(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), xy), None
    return "sift", describe_sift


def tum_verification(describer, i: int, j: int) -> GeometricVerification:
    frames = sorted(shared("tum_fr3_sequence").glob("*.png"))
    rgb = [cv2.cvtColor(cv2.imread(str(frames[k])), cv2.COLOR_BGR2RGB) for k in (j, i)]
    (qxy, qd, q_dense), (mxy, md, _) = describer[1](rgb[0]), describer[1](rgb[1])
    if q_dense is not None:
        cfg = MatchingConfig(direction="corners")
        matches = match_to_keyframe(q_dense, mxy, md, cfg, query_xy=qxy)
    else:
        cfg = MatchingConfig(stability=False)  # the stability test needs a dense map
        matches = match_corners(qxy, qd, mxy, md, cfg)
    return verify(matches, cfg, TUM_K, TUM_K)


def test_tum_neighbouring_frames_verify_with_a_small_rotation(tum_describer):
    near = tum_verification(tum_describer, 0, 1)
    assert near.accepted, near.reason
    assert near.num_inliers >= (100 if tum_describer[0] == "sift" else 30)
    assert np.degrees(np.linalg.norm(Rotation.from_matrix(near.rotation).as_rotvec())) < 5.0
    far = tum_verification(tum_describer, 0, 8)
    assert far.num_inliers < near.num_inliers / 3
