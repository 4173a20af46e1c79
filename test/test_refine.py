"""matching.refine: the trusted keyframe's matches and pose from one more RANSAC (keypoint head + SIFT),
kept only when it agrees with the verification the trust decision weighed."""
import logging

import numpy as np
import pytest

from dejavu_ros.evaluation.scenarios import TUM_CAMERA
from dejavu_ros.io.images import read_rgb
from dejavu_ros.matching import MatchingConfig, verify
from dejavu_ros.matching.matches import Matches
from dejavu_ros.matching.refine import MIN_AGREEMENT, refine_verification
from dejavu_ros.relocalization.engine import RelocalizationEngine

from conftest import shared
from engine_fixtures import config_for, trained_extractor
from matching_support import TUM_K

IDENTITY = [0.0, 0.0, 0.0, 1.0]


def _two_views(rng, n, rotation_deg, baseline):
    """Pixel matches of n random points seen by TUM_K cameras (query: rotated about y, moved by baseline)."""
    pts = np.column_stack([rng.uniform(-2, 2, n), rng.uniform(-1.5, 1.5, n), rng.uniform(4, 8, n)])
    a = np.radians(rotation_deg)
    rot = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    cam_q = (pts - np.asarray(baseline)) @ rot  # query camera frame: X_map = R X_q + t
    project = lambda p: (p[:, :2] / p[:, 2:]) * [TUM_K[0, 0], TUM_K[1, 1]] + [TUM_K[0, 2], TUM_K[1, 2]]
    return project(cam_q).astype(np.float32), project(pts).astype(np.float32)


def _matches(query_xy, map_xy, first_idx=0):
    n = len(query_xy)
    return Matches(query_xy=query_xy, map_xy=map_xy, map_idx=np.arange(first_idx, first_idx + n),
                   query_idx=np.full(n, -1), distance=np.zeros(n, np.float32), ratio=np.full(n, 0.5, np.float32),
                   direction="dense")


def test_the_refined_fit_adds_matches_of_the_same_geometry_and_keeps_the_trusted_inliers():
    rng = np.random.default_rng(3)
    cfg = MatchingConfig()
    q, m = _two_views(rng, 40, 4.0, [0.5, 0.0, 0.1])
    trusted = verify(_matches(q, m), cfg, K_query=TUM_K, K_map=TUM_K, query_size=(640, 480))
    assert trusted.accepted and trusted.num_inliers >= 38
    q2, m2 = _two_views(rng, 120, 4.0, [0.5, 0.0, 0.1])  # more points of the same motion...
    noise = rng.uniform([0, 0], [640, 480], (40, 2)).astype(np.float32)  # ...and outliers
    extra = _matches(np.concatenate([q2, noise]), np.concatenate([m2, rng.permutation(noise)]), 1000)
    refined = refine_verification(trusted, [extra], cfg, K_query=TUM_K, K_map=TUM_K, query_size=(640, 480))
    assert refined.accepted, refined.reason
    assert refined.agreement > 0.9 and refined.geometry.num_inliers >= trusted.num_inliers + 110
    assert np.degrees(np.arccos(np.clip((np.trace(refined.geometry.rotation) - 1) / 2, -1, 1))) == \
        pytest.approx(4.0, abs=0.3)
    assert refined.stats() == {"refined": 1.0, "refine_agreement": refined.agreement,
                               "refine_inliers": float(refined.geometry.num_inliers)}


def test_a_larger_set_of_another_geometry_cannot_take_over_the_trusted_pose():
    """Confident matches of a repeated façade elsewhere: many, mutually consistent, the wrong motion."""
    rng = np.random.default_rng(4)
    cfg = MatchingConfig()
    q, m = _two_views(rng, 30, 4.0, [0.5, 0.0, 0.1])
    trusted = verify(_matches(q, m), cfg, K_query=TUM_K, K_map=TUM_K)
    assert trusted.accepted
    q2, m2 = _two_views(rng, 150, -25.0, [-1.0, 0.3, 0.0])
    refined = refine_verification(trusted, [_matches(q2, m2, 1000)], cfg, K_query=TUM_K, K_map=TUM_K)
    assert refined.geometry.accepted and refined.agreement < MIN_AGREEMENT
    assert not refined.accepted and "of the trusted inliers" in refined.reason
    # the same geometry, less of it: kept
    q3, m3 = _two_views(rng, 60, 4.0, [0.5, 0.0, 0.1])
    assert refine_verification(trusted, [_matches(q3, m3, 1000)], cfg, K_query=TUM_K, K_map=TUM_K).accepted


def _tum():
    return [read_rgb(p) for p in sorted(shared("tum_fr3_sequence").glob("*.png"))[:2]]


@pytest.mark.slow
def test_the_engine_publishes_the_refined_pose_of_the_trusted_keyframe_and_the_same_decision(tmp_path):
    first, second = _tum()
    results = {}
    for refine in ("off", "dvf_head+sift"):
        cfg = config_for(tmp_path / f"{refine}.db")
        cfg.matching.refine = refine
        engine = RelocalizationEngine.from_config(cfg, map_mode="map", extractor=trained_extractor())
        assert engine.add_frame(first, 0.0, [0, 0, 0], IDENTITY, camera=TUM_CAMERA).added
        kf = engine.map.get(engine.map.ids()[0])
        if refine != "off":  # the map keeps the head keypoints (with descriptors) and SIFT beside the corners
            assert len(kf.head_keypoints) > 100 and kf.head_descriptors.shape == (len(kf.head_keypoints),
                                                                                  kf.descriptors.shape[1])
            assert len(kf.sift_keypoints) > 100
        else:
            assert kf.head_keypoints is None and kf.sift_keypoints is None
        results[refine] = engine.relocalize(second, 1.0, TUM_CAMERA)
    off, on = results["off"], results["dvf_head+sift"]
    assert off.relocalized and on.relocalized
    assert on.confidence == off.confidence  # the trust decision weighed the same verification
    assert on.evidence == off.evidence
    assert on.verification.stats["refined"] == 1.0 and on.verification.stats["refine_agreement"] >= MIN_AGREEMENT
    assert on.verification.num_inliers >= 1.5 * off.verification.num_inliers
    sift_cfg = config_for(tmp_path / "sift.db")  # SIFT alone on this day/day pair: the reference rotation
    sift_cfg.matching.method = "sift"
    engine = RelocalizationEngine.from_config(sift_cfg, map_mode="map", extractor=trained_extractor())
    engine.add_frame(first, 0.0, [0, 0, 0], IDENTITY, camera=TUM_CAMERA)
    reference = engine.relocalize(second, 1.0, TUM_CAMERA).verification.rotation

    def angle_to_reference(v):
        return np.degrees(np.arccos(np.clip((np.trace(v.rotation.T @ reference) - 1) / 2, -1, 1)))

    assert angle_to_reference(on.verification) < 2.0
    assert angle_to_reference(on.verification) < angle_to_reference(off.verification)


def test_a_map_without_the_refine_features_publishes_the_trusted_verification(tmp_path, caplog):
    first, second = _tum()
    cfg = config_for(tmp_path / "plain.db")
    cfg.matching.refine = "off"  # a map built before matching.refine (or with it off)
    engine = RelocalizationEngine.from_config(cfg, map_mode="map", extractor=trained_extractor())
    engine.add_frame(first, 0.0, [0, 0, 0], IDENTITY, camera=TUM_CAMERA)
    plain = engine.relocalize(second, 1.0, TUM_CAMERA)
    cfg.matching.refine = "dvf_head+sift"
    engine.update_config(cfg)
    with caplog.at_level(logging.WARNING):
        result = engine.relocalize(second, 2.0, TUM_CAMERA)
        engine.relocalize(second, 3.0, TUM_CAMERA)
    assert result.relocalized and "refined" not in result.verification.stats
    assert result.verification.num_inliers == plain.verification.num_inliers
    warnings = [r for r in caplog.records if "matching.refine" in r.getMessage()]
    assert len(warnings) == 1 and "rebuild the map" in warnings[0].getMessage()


@pytest.mark.slow
def test_the_refined_pnp_pose_uses_the_head_keypoints_3d_points(tmp_path):
    """PnP over the refined fit indexes the corners' 3-D points and then the head keypoints' (SIFT has
    none): with a constant 10 m depth of the demo street's façade, the refined PnP uses more inliers
    and lands where the corners-only PnP does (a wrong index would scatter the head points)."""
    from dejavu_ros.demo.run import SIDE_LOOKING, camera_intrinsics
    from dejavu_ros.demo.world import HEIGHT, FRAME_WIDTH, make_street, render

    street, cam = make_street(40.0, 7), camera_intrinsics()
    depth = np.full((HEIGHT, FRAME_WIDTH), 10.0, np.float32)
    poses = {}
    for refine in ("off", "dvf_head+sift"):
        cfg = config_for(tmp_path / f"{refine}.db")
        cfg.matching.refine = refine
        cfg.engine.sequence_length = 0
        engine = RelocalizationEngine.from_config(cfg, map_mode="map", extractor=trained_extractor())
        for x in (10.0, 16.0):
            assert engine.add_frame(render(street, x, "day", np.random.default_rng(1)), x, [x, 0, 0], SIDE_LOOKING,
                                    camera=cam, depth=depth).added
        kf = engine.map.get(engine.map.ids()[0])
        if refine != "off":
            assert kf.head_points3d is not None and np.allclose(kf.head_points3d[:, 2], 10.0)
        poses[refine] = engine.relocalize(render(street, 11.0, "day", np.random.default_rng(2)), 1.0, cam)
    off, on = poses["off"], poses["dvf_head+sift"]
    assert off.relocalized and on.relocalized and on.verification.stats["refined"] == 1.0
    assert off.pose.source == on.pose.source == "pnp"
    assert on.pose.inliers > off.pose.inliers  # head keypoints joined the PnP (SIFT matches cannot)
    assert np.linalg.norm(on.pose.position - off.pose.position) < 0.2
    assert np.linalg.norm(on.pose.position - [11.0, 0.0, 0.0]) < 2.0  # the render is not an exact pinhole
