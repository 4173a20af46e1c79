"""The trust decision: places, runner-ups, features, the calibration file, the pose and its covariance,
and the edge cases on real frames (one keyframe, a parked robot, a map of several traversals)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from engine_fixtures import config_for, trained_extractor

from conftest import shared
from dejavu_ros.config import DejavuConfig
from dejavu_ros.io.images import read_rgb
from dejavu_ros.map.keyframe import Keyframe
from dejavu_ros.matching.matches import Matches
from dejavu_ros.matching.verification import GeometricVerification
from dejavu_ros.relocalization import trust
from dejavu_ros.relocalization.engine import RelocalizationEngine
from dejavu_ros.relocalization.pose import anchor_spread, estimate_pose, pose_anchor, trusted_place
from dejavu_ros.relocalization.result import PoseSource
from dejavu_ros.resources import shipped_name

IDENTITY = [0.0, 0.0, 0.0, 1.0]


def test_same_place_and_runner_ups_are_places_not_keyframes():
    # candidates best first: two views of place A (another day), place B, place A again, place C
    positions = np.array([[0, 0, 0], [3, 0, 0], [200, 0, 0], [1, 1, 0], [400, 0, 0]], float)
    near = trust.same_place(positions, 15.0)
    assert near[0, 1] and near[0, 3] and not near[0, 2]
    assert trust.runner_ups(near, [0, 1], 2) == [2, 4]  # the best of each other place, in order
    assert trust.runner_ups(near, [0, 2], 1) == []  # B is already verified
    stats = {0: {"inliers": 80.0, "homography_inliers": 40.0}, 1: {"inliers": 70.0, "homography_inliers": 30.0},
             2: {"inliers": 25.0, "homography_inliers": 6.0}}
    cx = np.array([0.30, 0.29, 0.20, 0.28, 0.10])
    other = trust.other_place(0, near, cx, stats, trust.OtherPlace(exists=False))
    # the same place seen another day (candidate 1) is not a competitor
    assert (other.inliers, other.homography_inliers, other.cx, other.exists) == (25.0, 6.0, 0.20, True)


def test_a_map_with_one_place_is_compared_with_a_typical_wrong_place():
    near = trust.same_place(np.zeros((3, 3)), 15.0)
    typical = trust.OtherPlace(30.0, 9.0, 0.2, exists=False)
    assert trust.other_place(0, near, np.ones(3), {}, typical) is typical


def test_features_grow_with_the_margin_over_the_runner_up():
    stats = {"inliers": 60.0, "homography_inliers": 30.0, "coverage": 0.5, "inliers_half": 40.0,
             "essential": 1.0, "cheirality": 0.9, "inlier_ratio": 0.4}
    strong = trust.features(stats, 0.3, trust.OtherPlace(10.0, 2.0, 0.15))
    weak = trust.features(stats, 0.3, trust.OtherPlace(55.0, 28.0, 0.29))
    for name in ("inlier_margin", "homography_margin", "cx_margin"):
        assert strong[name] > weak[name] > -0.1
    assert strong["route_active"] == 0.0
    routed = trust.features(stats, 0.3, trust.OtherPlace(10.0, 2.0, 0.15), route_support=0.8)
    assert routed["route_active"] == 1.0 and routed["route_support"] == 0.8
    # a runner-up with no inliers is a margin of log((n + 8) / 8), not log(n + 1)
    assert trust.features(stats, 0.3, trust.OtherPlace(0.0, 0.0, 0.1))["inlier_margin"] == pytest.approx(np.log(68 / 8))


def test_the_shipped_calibration_loads_and_its_threshold_is_the_default():
    model = trust.TrustModel.load()
    assert set(model.coef) == set(trust.FEATURES)
    assert model.threshold == DejavuConfig().trust.min_confidence  # one operating point, stated once
    assert model.meta["data_sets"] and "99.5" in model.meta["rule"]
    x = trust.features({"inliers": 200.0, "homography_inliers": 150.0, "coverage": 0.9, "inliers_half": 180.0,
                        "essential": 1.0, "cheirality": 1.0, "inlier_ratio": 0.8}, 0.4,
                       trust.OtherPlace(10.0, 2.0, 0.1))
    y = trust.features({"inliers": 21.0, "homography_inliers": 5.0, "coverage": 0.2, "inliers_half": 8.0,
                        "essential": 0.0, "cheirality": 0.0, "inlier_ratio": 0.25}, 0.2,
                       trust.OtherPlace(20.0, 5.0, 0.2))
    assert model.probability(x) > 0.99 > model.threshold * 0 + model.probability(y)


def test_a_malformed_calibration_is_refused_with_its_name(tmp_path):
    bad = tmp_path / "trust.json"
    bad.write_text(json.dumps({"coef": {"made_up": 1.0}}))
    with pytest.raises(trust.TrustModelError, match=r"trust\.json: malformed .*made_up"):
        trust.TrustModel.load(bad)
    bad.write_text("{not json")
    with pytest.raises(trust.TrustModelError, match=r"trust\.json: not readable JSON"):
        trust.TrustModel.load(bad)
    with pytest.raises(trust.TrustModelError, match="not found"):
        trust.TrustModel.load(tmp_path / "none.json")


def _verification(model: str, rotation=None, inliers: int = 40) -> GeometricVerification:
    n = inliers
    matches = Matches(np.zeros((n, 2), np.float32), np.zeros((n, 2), np.float32), np.arange(n), np.arange(n),
                      np.zeros(n, np.float32), np.full(n, 0.5, np.float32), "dense")
    return GeometricVerification(matches=matches, inlier_mask=np.ones(n, bool), model=model, matrix=np.eye(3),
                                 rotation=rotation, cheirality_inliers=n if rotation is not None else 0,
                                 accepted=True)


def _keyframe(**kw) -> Keyframe:
    base = dict(stamp=0.0, position=np.array([5.0, 2.0, 0.0]), orientation=np.array(IDENTITY),
                global_desc=np.zeros(4, np.float32), grid=np.zeros((2, 1, 1), np.float16),
                keypoints=np.zeros((40, 2), np.float32), descriptors=np.zeros((40, 2), np.float16), image_size=(64, 48))
    base.update(kw)
    return Keyframe(**base)


def test_the_pose_says_what_it_is_and_its_covariance_follows_spacing_and_confidence():
    from dejavu_ros.matching.config import MatchingConfig

    cfg = MatchingConfig()
    turn = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # 90° about the camera's z
    rel = estimate_pose(_verification("essential", turn), _keyframe(), None, cfg, 0.99, 2.0, 15.0)
    assert rel.source == PoseSource.RELATIVE_ROTATION
    np.testing.assert_allclose(rel.position, [5.0, 2.0, 0.0])
    assert abs(abs(rel.orientation[2]) - np.sqrt(0.5)) < 1e-9  # the keyframe's orientation turned by E's rotation
    plain = estimate_pose(_verification("fundamental"), _keyframe(), None, cfg, 0.99, 2.0, 15.0)
    assert plain.source == PoseSource.KEYFRAME and np.allclose(plain.orientation, IDENTITY)
    sigma = lambda p: float(np.sqrt(p.covariance[0, 0]))  # noqa: E731
    assert 1.9 < sigma(plain) < 2.5  # one keyframe spacing when sure
    dense = estimate_pose(_verification("fundamental"), _keyframe(), None, cfg, 0.99, 0.5, 15.0)
    doubtful = estimate_pose(_verification("fundamental"), _keyframe(), None, cfg, 0.8, 2.0, 15.0)
    assert sigma(dense) < sigma(plain) < sigma(doubtful)
    assert sigma(doubtful) > 6.0  # a 20 % chance of a wrong place widens it towards the place radius
    assert rel.covariance[3, 3] < plain.covariance[3, 3]  # the essential matrix knows the rotation better


def test_the_pose_comes_from_the_trusted_place_keyframe_sharing_most_of_the_view():
    # candidates: the winner (8 m ahead, 58 inliers), a neighbour of the same place with 74 inliers,
    # one with more inliers but untrusted, one with more inliers but rejected, another place
    positions = np.array([[96, 0, 0], [90, 0, 0], [86, 0, 0], [84, 0, 0], [300, 0, 0]], float)
    near = trust.same_place(positions, 15.0)
    checked = {0: (_verification("essential", inliers=58), None), 1: (_verification("essential", inliers=74), None),
               2: (_verification("essential", inliers=90), None), 3: (_verification("essential", inliers=95), None),
               4: (_verification("essential", inliers=200), None)}
    checked[3][0].accepted = False
    confidence = np.array([0.9999, 0.998, 0.9, 0.9999, 0.9999])
    assert pose_anchor(0, near, checked, confidence, 0.996) == 1
    # nothing else of the place is trusted: the winner itself
    assert pose_anchor(0, near, checked, np.array([0.9999, 0.5, 0.5, 0.5, 1.0]), 0.996) == 0


def test_with_a_route_its_keyframe_anchors_the_pose_when_it_is_a_near_tie():
    # the demo street in fog: the keyframe with the most inliers (28) stands 8.5 m from the camera, the
    # route's keyframe 3.5 m away has 24 (>= 80 %): the route says where along the facade the camera is
    positions = np.array([[60, 0, 0], [55, 0, 0], [56, 0, 0], [200, 0, 0]], float)
    near = trust.same_place(positions, 15.0)
    checked = {k: (_verification("fundamental", inliers=n), None) for k, n in enumerate([28, 24, 21, 90])}
    confidence = np.array([0.9999, 0.9999, 0.9999, 0.9999])
    assert pose_anchor(0, near, checked, confidence, 0.996) == 0
    assert pose_anchor(0, near, checked, confidence, 0.996, route=1) == 1
    assert pose_anchor(0, near, checked, confidence, 0.996, route=2) == 0  # 21 < 0.8 · 28: no tie
    assert pose_anchor(0, near, checked, confidence, 0.996, route=3) == 0  # another place
    confidence[1] = 0.9
    assert pose_anchor(0, near, checked, confidence, 0.996, route=1) == 0  # not trusted itself


def test_near_tie_keyframes_of_the_trusted_place_widen_the_position_covariance():
    # the demo street in fog (arm D's evidence): the anchor with 28 inliers stands 8 m behind the
    # camera, a trusted keyframe 8 m ahead of it has 28 too, one 12 m ahead 24 (>= 80 %); 19 is no tie
    positions = np.array([[52, 0, 0], [60, 0, 0], [64, 0, 0], [46, 0, 0], [300, 0, 0]], float)
    near = trust.same_place(positions, 15.0)
    checked = {k: (_verification("fundamental", inliers=n), None) for k, n in enumerate([28, 28, 24, 19, 90])}
    confidence = np.array([0.9999, 0.9999, 0.99, 0.9999, 0.9999])
    pool = trusted_place(0, near, checked, confidence, 0.996)
    assert sorted(pool) == [0, 1, 3]  # keyframe 2 is below the threshold, 4 another place
    anchor = pose_anchor(0, near, checked, confidence, 0.996)
    assert anchor == 0  # a tie keeps the winner
    assert anchor_spread(anchor, pool, checked, positions) == pytest.approx(8.0)
    confidence[2] = 0.9999
    assert anchor_spread(anchor, trusted_place(0, near, checked, confidence, 0.996), checked, positions) == \
        pytest.approx(12.0)
    checked[1] = (_verification("fundamental", inliers=22), None)  # 22 < 0.8 · 28: no tie left but keyframe 2
    assert anchor_spread(anchor, trusted_place(0, near, checked, confidence, 0.996), checked, positions) == \
        pytest.approx(12.0)
    assert anchor_spread(anchor, [0], checked, positions) == 0.0

    from dejavu_ros.matching.config import MatchingConfig

    sigma = lambda spread: float(np.sqrt(estimate_pose(  # noqa: E731
        _verification("fundamental"), _keyframe(), None, MatchingConfig(), 0.9999, 2.0, 15.0,
        spread_m=spread).covariance[0, 0]))
    assert sigma(0.0) == pytest.approx(2.0, abs=0.05)
    assert sigma(12.0) == pytest.approx(np.sqrt(4.0 + 48.0), abs=0.05)  # uniform within 12 m of the keyframe
    assert sigma(12.0) > 8.0 / 1.5  # the 8 m error of the anchor lies within 1.5 σ


# --- edge cases on real frames (RobotCar triplets: a day street, the same place at night, another place)

def triplet(name: str) -> np.ndarray:
    return read_rgb(shared("robotcar_dejavu_triplets", f"image_{name}.png"))


def _engine(tmp_path, frames):
    cfg = config_for(tmp_path / "m.db")
    cfg.keyframes.min_distance_m = 0.1  # keyframes of a standing robot (several drives, novelty rule)
    engine = RelocalizationEngine.from_config(cfg, map_mode="map", extractor=trained_extractor())
    for i, (name, x) in enumerate(frames):
        assert engine.add_frame(triplet(name), float(i), [x, 0.0, 0.0], IDENTITY).added
    engine.cfg.engine.sequence_length = 0
    engine.update_config(engine.cfg)
    return engine


def test_one_keyframe_map_publishes_only_what_beats_a_typical_wrong_place(tmp_path):
    engine = _engine(tmp_path, [("anchor_0", 0.0)])
    wrong = engine.relocalize(triplet("negative_1"), 10.0)
    assert not wrong.relocalized and wrong.confidence < engine.cfg.trust.min_confidence
    ev = wrong.evidence[wrong.keyframe_id]
    assert ev["other_exists"] == 0.0  # no runner-up: the typical wrong place stood in
    right = engine.relocalize(triplet("anchor_1"), 11.0)
    assert right.confidence > wrong.confidence


def test_a_parked_robot_competes_with_the_other_place_not_with_itself(tmp_path):
    # three keyframes of the same spot (a robot standing still), another place 100 m away
    engine = _engine(tmp_path, [("anchor_0", 0.0), ("anchor_0", 0.2), ("anchor_0", 0.4), ("negative_0", 100.0)])
    result = engine.relocalize(triplet("anchor_1"), 10.0)
    assert result.candidates[0].position[0] < 1.0
    ev = result.evidence[result.keyframe_id]
    assert ev["other_exists"] == 1.0 and ev["cx_margin"] > 0  # measured against the place 100 m away


def test_night_queries_never_verify_the_wrong_place(tmp_path):
    engine = _engine(tmp_path, [("anchor_0", 0.0), ("negative_0", 100.0)])
    for name in ("positive_0", "positive_1"):
        result = engine.relocalize(triplet(name), 6.0)
        if result.relocalized:
            assert result.pose.position[0] < 15.0, (name, result.confidence)


def test_the_shipped_calibration_is_the_default_models_and_another_model_is_told_so(caplog, tmp_path):
    fe = trained_extractor()
    shipped = trust.TrustModel.load()
    assert shipped.meta["dvf_fingerprint"] == fe.fingerprint  # recalibrate whenever the default model changes
    assert shipped.meta["dvf_model"] == shipped_name(fe.source) == "models/dvf_default.safetensors"  # no build path
    assert shipped_name(tmp_path / "mine.safetensors") == str(tmp_path / "mine.safetensors")
    assert trust.calibration_mismatch(shipped, fe.fingerprint) == ""
    assert trust.calibration_mismatch(trust.TrustModel.neutral(), "0123") == ""  # evidence collection
    unrecorded = trust.TrustModel(**{**shipped.__dict__, "meta": {}})
    assert trust.calibration_mismatch(unrecorded, "0123") == ""  # cannot tell: no warning
    why = trust.calibration_mismatch(shipped, "0123")
    assert fe.fingerprint in why and "0123" in why and "trust.model" in why

    from dejavu_ros.features.extractor import FeatureExtractor
    cfg = DejavuConfig()
    cfg.matching.refine = "off"  # the shipped keypoint head would warn about the untrained network too
    with caplog.at_level("WARNING", logger="dejavu_ros.relocalization.engine"):
        engine = RelocalizationEngine(cfg, FeatureExtractor.random(seed=0))
    assert engine.trust_mismatch and engine.trust_mismatch in caplog.text
    assert RelocalizationEngine(DejavuConfig(), fe).trust_mismatch == ""
