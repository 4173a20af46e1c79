"""Message builders: every output built with the rosbags classes survives CDR and carries the inputs."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from dejavu_ros.output import messages as M
from dejavu_ros.output.debug_image import render_debug_image
from dejavu_ros.io.typestore import stamp_to_ns, typestore
from dejavu_ros.matching.verification import Verification
from dejavu_ros.relocalization.result import Candidate, PoseEstimate, RelocalizationResult

STAMP_NS = 1_700_000_123_987_654_321  # not representable exactly as float seconds


@pytest.fixture(scope="module")
def store():
    return typestore()


@pytest.fixture(scope="module")
def mt(store):
    return M.MessageTypes.from_rosbags(store)


def roundtrip(store, msg, msgtype):
    return store.deserialize_cdr(store.serialize_cdr(msg, msgtype), msgtype)


def make_result(rng, n_candidates=4, n_inliers=25, relocalized=True) -> RelocalizationResult:
    quats = Rotation.random(n_candidates, random_state=rng).as_quat()
    candidates = [Candidate(keyframe_id=int(100 + 7 * i), rank=int(r), shortlist_score=float(rng.uniform()),
                            cx_score=float(rng.uniform()), position=rng.normal(size=3) * 10,
                            orientation=quats[i], inliers=int(rng.integers(0, 50)), overlap=float(rng.uniform()),
                            scale=float(rng.uniform(0.3, 3.0)))
                  for i, r in enumerate(rng.permutation(n_candidates))]
    best = min(candidates, key=lambda c: c.rank)
    verification = Verification(keyframe_id=best.keyframe_id, query_xy=rng.uniform(0, 320, (n_inliers, 2)),
                                map_xy=rng.uniform(0, 320, (n_inliers, 2)),
                                scores=rng.uniform(size=n_inliers),
                                num_matches=2 * n_inliers, inlier_ratio=0.5, model="essential",
                                matrix=np.eye(3), accepted=relocalized)
    a = rng.normal(size=(6, 6))
    pose = PoseEstimate(position=rng.normal(size=3), orientation=Rotation.random(random_state=rng).as_quat(),
                        covariance=a @ a.T, source="pnp", inliers=n_inliers)
    return RelocalizationResult(stamp=STAMP_NS * 1e-9, image_size=(320, 240),
                                status="relocalized" if relocalized else "not_verified",
                                candidates=candidates,
                                verification=verification, pose=pose if relocalized else None,
                                timings_ms={"total": 42.0})


def assert_stamp(header, frame_id):
    assert header.stamp.sec * 1_000_000_000 + header.stamp.nanosec == STAMP_NS
    assert header.frame_id == frame_id


def test_candidates_pose_array_is_best_first(store, mt):
    result = make_result(np.random.default_rng(0))
    msg = roundtrip(store, M.candidates_msg(mt, result, STAMP_NS, "map"), "geometry_msgs/msg/PoseArray")
    assert_stamp(msg.header, "map")
    ranked = sorted(result.candidates, key=lambda c: c.rank)
    assert len(msg.poses) == len(ranked)
    for pose, cand in zip(msg.poses, ranked):
        p, q = pose.position, pose.orientation
        np.testing.assert_allclose([p.x, p.y, p.z], cand.position)
        np.testing.assert_allclose([q.x, q.y, q.z, q.w], cand.orientation)


def test_candidate_scores_cloud_layout_and_values(store, mt):
    result = make_result(np.random.default_rng(1), n_candidates=5)
    msg = roundtrip(store, M.candidate_scores_msg(mt, result, STAMP_NS, "map"), "sensor_msgs/msg/PointCloud2")
    assert_stamp(msg.header, "map")
    assert [f.name for f in msg.fields] == list(M.CANDIDATE_FIELDS)
    assert all(f.datatype == store.types["sensor_msgs/msg/PointField"].FLOAT32 and f.count == 1
               for f in msg.fields)
    n = len(M.CANDIDATE_FIELDS)
    assert [f.offset for f in msg.fields] == [4 * i for i in range(n)]
    assert (msg.height, msg.width, msg.point_step, msg.row_step) == (1, 5, 4 * n, 4 * n * 5)
    assert len(msg.data) == msg.row_step and not msg.is_bigendian and msg.is_dense
    # decoding with a plain numpy structured dtype gives the inputs back
    raw = np.frombuffer(bytes(msg.data), dtype=np.dtype([(n, "<f4") for n in M.CANDIDATE_FIELDS]))
    ranked = sorted(result.candidates, key=lambda c: c.rank)
    expected = np.array([[*c.position, c.keyframe_id, c.rank, c.shortlist_score, c.cx_score, c.inliers,
                          c.confidence, c.overlap, c.scale] for c in ranked], dtype=np.float32)
    np.testing.assert_array_equal(np.stack([raw[n] for n in M.CANDIDATE_FIELDS], axis=1), expected)
    np.testing.assert_array_equal(M.cloud_to_array(msg), raw)


def test_pose_only_when_verified(store, mt):
    rng = np.random.default_rng(2)
    result = make_result(rng)
    msg = roundtrip(store, M.pose_with_covariance_msg(mt, result, STAMP_NS, "map"),
                    "geometry_msgs/msg/PoseWithCovarianceStamped")
    assert_stamp(msg.header, "map")
    p, q = msg.pose.pose.position, msg.pose.pose.orientation
    np.testing.assert_allclose([p.x, p.y, p.z], result.pose.position)
    np.testing.assert_allclose([q.x, q.y, q.z, q.w], result.pose.orientation)
    np.testing.assert_allclose(np.asarray(msg.pose.covariance).reshape(6, 6), result.pose.covariance)
    assert M.pose_with_covariance_msg(mt, make_result(rng, relocalized=False), STAMP_NS, "map") is None
    assert "pose" not in M.result_messages(mt, make_result(rng, relocalized=False), STAMP_NS, "map", "cam")


def test_pose_rejects_bad_covariance(mt):
    result = make_result(np.random.default_rng(3))
    result.pose.covariance = np.eye(3)
    with pytest.raises(M.MessageBuildError, match="covariance"):
        M.pose_with_covariance_msg(mt, result, STAMP_NS, "map")


def test_matches_cloud(store, mt):
    result = make_result(np.random.default_rng(4), n_inliers=31)
    msg = roundtrip(store, M.matches_msg(mt, result, STAMP_NS, "camera_optical"),
                    "sensor_msgs/msg/PointCloud2")
    assert_stamp(msg.header, "camera_optical")
    assert [f.name for f in msg.fields] == list(M.MATCH_FIELDS)
    assert (msg.width, msg.point_step, msg.row_step) == (31, 24, 24 * 31)
    pts = M.cloud_to_array(msg)
    v = result.verification
    np.testing.assert_array_equal(pts["u_query"], v.query_xy[:, 0].astype(np.float32))
    np.testing.assert_array_equal(pts["v_query"], v.query_xy[:, 1].astype(np.float32))
    np.testing.assert_array_equal(pts["u_map"], v.map_xy[:, 0].astype(np.float32))
    np.testing.assert_array_equal(pts["v_map"], v.map_xy[:, 1].astype(np.float32))
    np.testing.assert_array_equal(pts["score"], v.scores.astype(np.float32))
    assert np.all(pts["keyframe_id"] == v.keyframe_id)


def test_empty_result_gives_empty_messages(store, mt):
    result = RelocalizationResult(stamp=0.0, image_size=(64, 48), status="map_empty")
    msgs = M.result_messages(mt, result, STAMP_NS, "map", "cam")
    assert set(msgs) == {"candidates", "candidate_scores", "matches"}
    for name, msg in msgs.items():
        back = roundtrip(store, msg, M.RESULT_TOPICS[name])
        assert_stamp(back.header, "cam" if name == "matches" else "map")
    assert len(msgs["candidates"].poses) == 0
    assert msgs["matches"].width == 0 and len(M.cloud_to_array(msgs["matches"])) == 0


def test_mismatched_verification_lengths_are_refused(mt):
    result = make_result(np.random.default_rng(5))
    result.verification.scores = result.verification.scores[:-1]
    with pytest.raises(M.MessageBuildError, match="different lengths"):
        M.matches_msg(mt, result, STAMP_NS, "cam")


def test_image_message(store, mt):
    rgb = np.random.default_rng(6).integers(0, 256, (12, 17, 3), dtype=np.uint8)
    msg = roundtrip(store, M.image_msg(mt, rgb, STAMP_NS, "cam"), "sensor_msgs/msg/Image")
    assert_stamp(msg.header, "cam")
    assert (msg.height, msg.width, msg.encoding, msg.step) == (12, 17, "rgb8", 51)
    np.testing.assert_array_equal(np.asarray(msg.data).reshape(12, 17, 3), rgb)
    with pytest.raises(M.MessageBuildError, match="H×W×3 uint8"):
        M.image_msg(mt, rgb[..., 0], STAMP_NS, "cam")


def test_map_markers(store, mt):
    rng = np.random.default_rng(7)
    result = make_result(rng, n_candidates=3)
    positions = rng.normal(size=(9, 3))
    msg = roundtrip(store, M.map_markers_msg(mt, positions, result.candidates, STAMP_NS, "map"),
                    "visualization_msgs/msg/MarkerArray")
    marker = store.types["visualization_msgs/msg/Marker"]
    by_ns = {m.ns: m for m in msg.markers}
    assert set(by_ns) == {"keyframes", "path", "candidates"}
    assert by_ns["keyframes"].type == marker.SPHERE_LIST and by_ns["path"].type == marker.LINE_STRIP
    for ns in ("keyframes", "path"):
        assert_stamp(by_ns[ns].header, "map")
        assert by_ns[ns].action == marker.ADD
        np.testing.assert_allclose([[p.x, p.y, p.z] for p in by_ns[ns].points], positions)
    cand = by_ns["candidates"]
    ranked = sorted(result.candidates, key=lambda c: c.rank)
    np.testing.assert_allclose([[p.x, p.y, p.z] for p in cand.points], [c.position for c in ranked])
    assert len(cand.colors) == 3 and cand.colors[0].g > cand.colors[-1].g  # the best is the greenest
    # no keyframes, no candidates: markers are deleted rather than drawn empty
    empty = M.map_markers_msg(mt, np.zeros((0, 3)), [], STAMP_NS, "map")
    empty = roundtrip(store, empty, "visualization_msgs/msg/MarkerArray")
    assert all(m.action == marker.DELETE for m in empty.markers)


def test_diagnostics(store, mt):
    reports = [M.DiagnosticReport("relocalizer: relocalization", M.WARN, "latency high", "cuda:0",
                                  {"rate (Hz)": 4.25, "frames dropped": 3, "device": "cuda:0"})]
    msg = roundtrip(store, M.diagnostics_msg(mt, STAMP_NS, reports), M.DIAGNOSTICS_TYPE)
    assert msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec == STAMP_NS
    (status,) = msg.status
    assert (status.level, status.name, status.message, status.hardware_id) == (
        store.types["diagnostic_msgs/msg/DiagnosticStatus"].WARN, "relocalizer: relocalization",
        "latency high", "cuda:0")
    assert {kv.key: kv.value for kv in status.values} == {"rate (Hz)": "4.25", "frames dropped": "3",
                                                          "device": "cuda:0"}
    with pytest.raises(M.MessageBuildError, match="level 7"):
        M.diagnostics_msg(mt, STAMP_NS, [M.DiagnosticReport("x", 7, "")])


def test_other_distribution_fills_its_own_fields():
    """Marker differs between distributions (texture, mesh_file); the builders still fit each one."""
    from rosbags.typesys import Stores, get_typestore

    for store_name in (Stores.ROS2_FOXY, Stores.ROS2_JAZZY):
        store = get_typestore(store_name)
        mt = M.MessageTypes.from_rosbags(store)
        msg = M.map_markers_msg(mt, np.ones((2, 3)), [], STAMP_NS, "map")
        back = roundtrip(store, msg, "visualization_msgs/msg/MarkerArray")
        assert [m.ns for m in back.markers] == ["keyframes", "path", "candidates"]


def test_non_finite_pose_is_refused(mt):
    result = make_result(np.random.default_rng(8))
    result.candidates[0].position = np.array([np.nan, 0.0, 0.0])
    with pytest.raises(M.MessageBuildError, match="position"):
        M.candidates_msg(mt, result, STAMP_NS, "map")


def test_stamp_helpers():
    assert M.seconds_to_ns(1.5) == 1_500_000_000
    assert stamp_to_ns(M.time_msg(M.MessageTypes.from_rosbags(), STAMP_NS)) == STAMP_NS


def test_debug_image_draws_inliers():
    rng = np.random.default_rng(9)
    result = make_result(rng, n_inliers=10)
    query = np.zeros((240, 320, 3), dtype=np.uint8)
    thumb = np.full((120, 160, 3), 128, dtype=np.uint8)
    img = render_debug_image(query, result, thumb, keyframe_size=(320, 240))
    assert img.dtype == np.uint8 and img.shape[2] == 3
    assert img.shape[1] == 320 + 320  # thumbnail scaled to the query height
    plain = render_debug_image(query, RelocalizationResult(0.0, (320, 240), "not_verified"), thumb,
                               keyframe_size=(320, 240))
    # the query half is black apart from the banner: inlier lines put colour into it
    assert img[30:, :320].any() and not plain[30:, :320].any()
    no_thumb = render_debug_image(query, result, None)
    assert no_thumb.shape[0] == img.shape[0]


def test_debug_image_downscales_large_queries():
    result = RelocalizationResult(0.0, (1280, 960), "not_verified")
    img = render_debug_image(np.zeros((960, 1280, 3), np.uint8), result, None, max_height=240)
    assert img.shape[0] <= 240 + 30


def test_a_result_summarises_in_one_line_with_why_it_was_not_relocalized():
    published = make_result(np.random.default_rng(3))
    best = min(published.candidates, key=lambda c: c.rank)
    assert published.summary() == (f"relocalized: keyframe {best.keyframe_id} (cx {best.cx_score:.3f}, "
                                   f"25 inliers)")
    refused = make_result(np.random.default_rng(3), relocalized=False)
    refused.message = "11 inliers < min_inliers 20"
    assert refused.summary().startswith("not_verified: keyframe") and refused.summary().endswith(
        ": 11 inliers < min_inliers 20")
    empty = RelocalizationResult(stamp=0.0, image_size=(320, 240), status="map_empty", message="the map is empty")
    assert empty.summary() == "map_empty: no candidates the map is empty"


def test_a_summary_names_the_verified_keyframe_not_the_best_ranked_one():
    result = make_result(np.random.default_rng(3))
    best = min(result.candidates, key=lambda c: c.rank)
    other = next(c for c in result.candidates if c is not best)
    result.verification.keyframe_id = other.keyframe_id  # the pose was anchored on another keyframe of the place
    result.message = "left out when relocalized"
    assert result.summary() == (f"relocalized: keyframe {other.keyframe_id} (cx {other.cx_score:.3f}, 25 inliers)")
