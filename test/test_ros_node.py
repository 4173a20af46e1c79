"""The relocalizer node.

The first part tests the node's pure-Python helpers (frame slot and worker, pose pairing,
diagnostics, parameter rules) and runs everywhere. The second part starts the real node
in-process (test/ros_harness.py) and talks to it over ROS topics and services; it needs rclpy
and is skipped without a ROS 2 install.
"""
from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np
import pytest

from dejavu_ros.config import DejavuConfig, specs
from dejavu_ros.errors import DejavuError
from dejavu_ros.output.messages import ERROR, OK, WARN
from dejavu_ros.ros.health import NodeState, assess
from dejavu_ros.ros.parameters import check_changes, descriptor_fields, unknown_overrides
from dejavu_ros.ros.pose_buffer import PoseBuffer, StampedPose, covariance_6x6
from dejavu_ros.ros.worker import LatestFrameWorker
from dejavu_ros.schema import ConfigError
from ros_harness import harness, ns, ros, wait_for  # noqa: F401 (fixtures)


# --- worker -------------------------------------------------------------------------------------

class Gate:
    """A process function that blocks on frame 'hold' until released, recording what it saw."""

    def __init__(self):
        self.seen: list = []
        self.release = threading.Event()
        self.entered = threading.Event()

    def __call__(self, frame):
        self.seen.append(frame)
        if frame == "hold":
            self.entered.set()
            self.release.wait(5.0)
        return f"result of {frame}"


def test_latest_frame_wins_and_drops_are_counted():
    gate = Gate()
    worker = LatestFrameWorker(gate).start()
    try:
        assert worker.submit("hold")
        assert gate.entered.wait(2.0)
        assert worker.submit(1)  # slot was empty: nothing replaced
        assert not worker.submit(2) and not worker.submit(3)  # 1 and 2 never get processed
        gate.release.set()
        assert wait_for(lambda: worker.stats().processed == 2)
        assert gate.seen == ["hold", 3] and not worker.stats().pending
        stats = worker.stats()
        assert (stats.received, stats.processed, stats.dropped, stats.skipped) == (4, 2, 2, 0)
        assert stats.last_latency_s is not None and stats.max_latency_s >= stats.mean_latency_s > 0
    finally:
        worker.stop()


def test_max_rate_spaces_processing_and_counts_skips():
    starts = []
    worker = LatestFrameWorker(lambda frame: starts.append(time.monotonic()), max_rate=10.0).start()
    try:
        t_end = time.monotonic() + 0.35
        n = 0
        while time.monotonic() < t_end:
            worker.submit(n)
            n += 1
            time.sleep(0.002)
        assert wait_for(lambda: not worker.stats().busy and not worker.stats().pending)
        stats = worker.stats()
        assert 2 <= stats.processed <= 5  # ~0.35 s at 10 Hz (+ the last frame after the burst)
        assert np.all(np.diff(starts) >= 0.099)
        assert stats.received == n == stats.processed + stats.skipped + stats.dropped
        assert stats.skipped > stats.dropped  # held back by the rate, not by a busy engine
        worker.set_max_rate(0.0)  # dynamic: unthrottled from now on
        before = worker.stats().processed
        for k in range(3):
            worker.submit(k)
            assert wait_for(lambda k=k: worker.stats().processed == before + k + 1, 1.0)
    finally:
        worker.stop()


def test_on_demand_processes_only_on_request():
    seen = []
    worker = LatestFrameWorker(lambda f: seen.append(f) or f * 10, on_demand=True).start()
    try:
        for frame in (1, 2, 3):
            worker.submit(frame)
        time.sleep(0.05)
        assert seen == []
        reply = worker.request_once(2.0)
        assert reply.done and reply.result == 30 and seen == [3]
        stats = worker.stats()
        assert stats.dropped == 0 and stats.skipped == 2
        # no frame held: the request waits for the next one
        threading.Timer(0.05, worker.submit, args=(4,)).start()
        assert worker.request_once(2.0).result == 40
        late = worker.request_once(0.05)
        assert not late.done and "timed out" in late.message
    finally:
        worker.stop()


def test_errors_are_reported_and_the_worker_continues():
    errors = []

    def process(frame):
        if frame == "bad":
            raise DejavuError("topic 'image': unsupported encoding 'yuv9'")
        return frame

    worker = LatestFrameWorker(process, on_error=errors.append).start()
    try:
        worker.submit("bad")
        assert wait_for(lambda: worker.stats().errors == 1)
        worker.submit("good")
        assert wait_for(lambda: worker.stats().processed == 1)
        assert len(errors) == 1 and "yuv9" in str(errors[0])
    finally:
        worker.stop()


def test_stop_finishes_the_frame_and_answers_waiting_requests():
    gate = Gate()
    worker = LatestFrameWorker(gate, on_demand=True).start()
    worker.submit("hold")
    replies = []
    threading.Thread(target=lambda: replies.append(worker.request_once(5.0))).start()
    assert gate.entered.wait(2.0)
    waiting = []
    threading.Thread(target=lambda: waiting.append(worker.request_once(5.0))).start()
    time.sleep(0.05)
    threading.Timer(0.1, gate.release.set).start()
    assert worker.stop(5.0)
    assert wait_for(lambda: len(replies) == 1 and len(waiting) == 1)
    assert replies[0].done and replies[0].result == "result of hold"
    assert not waiting[0].done and "shutting down" in waiting[0].message


# --- pose pairing -------------------------------------------------------------------------------

def stamped(stamp_ns: int, x: float = 0.0) -> StampedPose:
    return StampedPose(stamp_ns, np.array([x, 0.0, 0.0]), np.array([0.0, 0.0, 0.0, 1.0]), None)


def test_pose_buffer_pairs_by_nearest_stamp_within_tolerance():
    buf = PoseBuffer(capacity=4)
    for t in (300, 100, 200):  # out of order on purpose
        buf.add(stamped(t * 1_000_000, x=t))
    assert buf.nearest(140_000_000, 0.05).position[0] == 100
    assert buf.nearest(160_000_000, 0.05).position[0] == 200
    assert buf.nearest(360_000_000, 0.05) is None  # 60 ms away
    assert buf.nearest(360_000_000, 0.1).position[0] == 300
    for t in (400, 500):
        buf.add(stamped(t * 1_000_000, x=t))
    assert len(buf) == 4 and buf.nearest(100_000_000, 0.01) is None  # the oldest was forgotten


def test_covariance_helper():
    assert covariance_6x6([0.0] * 36) is None
    np.testing.assert_array_equal(covariance_6x6(np.eye(6).ravel()), np.eye(6))


# --- diagnostics --------------------------------------------------------------------------------

def node_state(**kw) -> NodeState:
    base = dict(name="relocalizer: relocalization", map_mode="localize", mode="continuous", map_size=10,
                device="cpu", fingerprint="abc123", latency_warn_s=1.0, seconds_since_image=0.1,
                image_timeout_s=5.0)
    base.update(kw)
    return NodeState(**base)


def worker_stats(mean_latency=0.2):
    stats = LatestFrameWorker(lambda f: f).stats()  # never started: all zeros
    return dataclasses.replace(stats, mean_latency_s=mean_latency, last_latency_s=mean_latency,
                               max_latency_s=mean_latency, processed=5, dropped=2, rate_hz=4.0)


def test_health_levels():
    ok = assess(worker_stats(), node_state())
    assert ok.level == OK and "4.0 Hz" in ok.message
    assert ok.values["map size (keyframes)"] == 10 and ok.values["model fingerprint"] == "abc123"
    assert ok.values["frames dropped (busy)"] == 2
    assert ok.values["device"] == "cpu" and ok.hardware_id == "cpu"
    slow = assess(worker_stats(mean_latency=2.5), node_state())
    assert slow.level == WARN and "latency" in slow.message
    assert assess(worker_stats(), node_state(seconds_since_image=None)).level == WARN
    assert assess(worker_stats(), node_state(seconds_since_image=9.0)).level == WARN
    empty = assess(worker_stats(mean_latency=2.5), node_state(map_size=0))
    assert empty.level == ERROR and "no keyframes" in empty.message  # the worst problem wins
    # a new map starts empty
    assert assess(worker_stats(), node_state(map_size=0, map_mode="map")).level == OK
    failing = assess(worker_stats(), node_state(last_error="bad encoding"))
    assert failing.level == ERROR and "bad encoding" in failing.message


def test_a_trust_calibration_of_another_model_is_a_warning_while_localizing():
    why = "the trust calibration was fitted on DVF model aaaa, the loaded model is abc123: recalibrate"
    warned = assess(worker_stats(), node_state(trust_mismatch=why))
    assert warned.level == WARN and warned.message == why
    assert assess(worker_stats(), node_state(trust_fitted_on="aaaa")).values["trust calibration fitted on"] == "aaaa"
    assert warned.values["trust calibration fitted on"] == "not recorded"
    assert assess(worker_stats(), node_state(trust_mismatch=why, map_mode="map")).level == OK  # nothing is trusted


# --- parameter rules ----------------------------------------------------------------------------

def test_descriptors_follow_the_schema():
    table = specs()
    ratio = descriptor_fields(table["matching.ratio"])
    assert ratio["floating_point_range"] == (0.0, 1.0) and not ratio["read_only"]
    assert ratio["description"] == table["matching.ratio"].description
    corners = descriptor_fields(table["matching.max_corners"])
    assert corners["integer_range"] == (8, 20000) and corners["read_only"]
    precision = descriptor_fields(table["features.precision"])
    assert "fp16" in precision["additional_constraints"] and precision["integer_range"] is None
    for spec in table.values():  # every range is typed like its parameter
        fields = descriptor_fields(spec)
        if fields["integer_range"]:
            assert all(isinstance(v, int) for v in fields["integer_range"])
        if fields["floating_point_range"]:
            assert all(isinstance(v, float) for v in fields["floating_point_range"])


def test_parameter_changes_are_checked():
    cfg = DejavuConfig()
    changed = check_changes(cfg, {"matching.ratio": 0.8, "node.max_rate": 2.0, "use_sim_time": True})
    assert changed.matching.ratio == 0.8 and changed.node.max_rate == 2.0 and cfg.matching.ratio == 0.9
    assert check_changes(cfg, {"use_sim_time": True}) is cfg
    with pytest.raises(ConfigError, match="matching.ratio.*above the maximum"):
        check_changes(cfg, {"matching.ratio": 1.5})
    with pytest.raises(ConfigError, match="features.max_side.*cannot change while the node runs"):
        check_changes(cfg, {"features.max_side": 320})
    with pytest.raises(ConfigError, match="matching.direction"):
        check_changes(cfg, {"matching.direction": "sideways"})


def test_unknown_overrides_are_found():
    names = ["matching.ratio", "matching.ratoi", "use_sim_time", "qos_overrides./image.subscription.depth"]
    assert unknown_overrides(names) == ["matching.ratoi"]


# =================================================================================================
# In-process node tests (need rclpy; the harness and the fake engine are in ros_harness.py)
# =================================================================================================

@pytest.mark.ros
@pytest.mark.parametrize("reliable", [False, True], ids=["sensor_data", "reliable"])
def test_results_arrive_stamped_with_the_image(harness, reliable):
    from dejavu_ros.output.messages import cloud_to_array

    h = harness({"node.reliable_qos": reliable, "node.diagnostics_period_s": 0.2}, probe_reliable=reliable)
    stamp = 1_700_000_000_123_456_789
    assert h.publish_until(stamp), "no candidates came back"
    assert wait_for(lambda: h.received["pose"] and h.received["matches"] and h.received["scores"])
    cand = next(m for m in h.received["candidates"] if ns(m.header.stamp) == stamp)
    assert cand.header.frame_id == "map" and len(cand.poses) == 3
    assert cand.poses[0].position.x == pytest.approx(3.0)  # keyframe 3 is the best
    pose = next(m for m in h.received["pose"] if ns(m.header.stamp) == stamp)
    assert pose.pose.pose.position.x == pytest.approx(3.5) and pose.pose.covariance[0] == pytest.approx(0.1)
    matches = next(m for m in h.received["matches"] if ns(m.header.stamp) == stamp)
    assert matches.header.frame_id == "camera_optical" and matches.width == 3
    np.testing.assert_allclose(cloud_to_array(matches)["u_map"], [11.0, 41.0, 71.0])
    scores = next(m for m in h.received["scores"] if ns(m.header.stamp) == stamp)
    assert list(cloud_to_array(scores)["keyframe_id"]) == [3.0, 1.0, 4.0]
    assert h.engine.stamps[0] == pytest.approx(stamp * 1e-9)
    assert wait_for(lambda: any(s.name.startswith("relocalizer")
                                for d in h.received["diag"] for s in d.status))
    status = [s for d in h.received["diag"] for s in d.status][-1]
    values = {kv.key: kv.value for kv in status.values}
    assert values["map size (keyframes)"] == "5" and values["model fingerprint"] == "f00dfeed"
    assert values["trust calibration fitted on"] == "f00dfeed"


@pytest.mark.ros
def test_a_trust_calibration_of_another_model_shows_on_diagnostics(harness):
    h = harness({"node.diagnostics_period_s": 0.2})
    h.engine.trust_mismatch = "the trust calibration was fitted on DVF model aaaa, the loaded model is f00dfeed"
    h.engine.trust_fitted_on = "aaaa"
    assert wait_for(lambda: any(h.engine.trust_mismatch in s.message for d in h.received["diag"] for s in d.status))
    status = [s for d in h.received["diag"] for s in d.status if h.engine.trust_mismatch in s.message][-1]
    assert {kv.key: kv.value for kv in status.values}["trust calibration fitted on"] == "aaaa"


@pytest.mark.ros
def test_services_answer(harness):
    h = harness({"node.mode": "on_demand"})
    saved = h.call("/relocalizer/save_map")  # localize mode: the map is read-only, nothing is written
    assert not saved.success and "nothing saved" in saved.message
    assert h.call("/relocalizer/reload_map").success and h.engine.reloaded == 1
    streaming = threading.Event()

    def camera():  # a live camera: frames keep coming while the service is called
        while not streaming.is_set():
            h.image_pub.publish(h.image(42_000_000_000))
            time.sleep(0.02)

    threading.Thread(target=camera, daemon=True).start()
    try:
        assert wait_for(lambda: h.node.worker.stats().received > 3, 10.0)
        assert h.engine.stamps == []  # on demand: nothing processed without a request
        reply = h.call("/relocalizer/relocalize_once", timeout_s=35.0)
    finally:
        streaming.set()
    assert reply.success and "keyframe 3" in reply.message
    assert h.engine.stamps == [pytest.approx(42.0)]  # only the requested frame
    assert h.node.worker.stats().dropped == 0


@pytest.mark.ros
def test_bad_parameter_values_are_refused(harness):
    from rclpy.parameter import Parameter

    h = harness()
    node = h.node
    bad = node.set_parameters([Parameter("matching.ratio", value=1.5)])[0]
    assert not bad.successful and "matching.ratio" in bad.reason
    assert not node.set_parameters([Parameter("matching.direction", value="sideways")])[0].successful
    assert not node.set_parameters([Parameter("features.max_side", value=320)])[0].successful  # read-only
    assert node.get_parameter("matching.ratio").value == pytest.approx(0.9)
    good = node.set_parameters([Parameter("matching.ratio", value=0.8)])[0]
    assert good.successful and node.get_parameter("matching.ratio").value == pytest.approx(0.8)
    assert h.publish_until(7_000_000_000)  # the change reaches the engine with the next frame
    assert h.engine.configs and h.engine.configs[-1].matching.ratio == pytest.approx(0.8)


@pytest.mark.ros
@pytest.mark.slow
def test_a_flood_keeps_latency_bounded_and_counts_drops(harness):
    delay = 0.05
    h = harness({"node.reliable_qos": True}, delay_s=delay, probe_reliable=True)
    assert h.publish_until(1_000_000_000)
    for i in range(100):  # 100 Hz for a second: five times what the engine manages
        h.image_pub.publish(h.image(2_000_000_000 + i * 10_000_000))
        time.sleep(0.01)
    assert wait_for(lambda: h.node.worker.stats().received >= 50, 10.0)
    assert wait_for(lambda: not h.node.worker.stats().busy and not h.node.worker.stats().pending, 5.0)
    stats = h.node.worker.stats()
    assert stats.dropped > 0 and stats.processed < stats.received
    assert stats.processed + stats.dropped + stats.errors == stats.received
    assert stats.max_latency_s < 10 * delay  # one frame in progress + one waiting, never a queue


@pytest.mark.ros
def test_mapping_mode_pairs_images_with_odometry_and_commits_on_shutdown(harness):
    from nav_msgs.msg import Odometry
    from rclpy.qos import QoSProfile

    h = harness({"node.map_mode": "map"})
    odom_pub = h.probe.create_publisher(Odometry, "odom", QoSProfile(depth=10))
    stamp = 5_000_000_000
    odom = Odometry()
    odom.header.stamp.sec, odom.header.frame_id = 5, "map"
    odom.pose.pose.position.x, odom.pose.pose.orientation.w = 12.5, 1.0
    end = time.monotonic() + 10.0
    while not h.engine.added and time.monotonic() < end:
        odom_pub.publish(odom)
        h.image_pub.publish(h.image(stamp + 10_000_000))  # 10 ms after the odometry: within tolerance
        time.sleep(0.1)
    assert h.engine.added, "no keyframe was added"
    added_stamp, position, source = h.engine.added[0]
    assert added_stamp == pytest.approx(5.01) and position[0] == pytest.approx(12.5)
    assert source.endswith("image")
    h.node.shutdown()
    assert h.engine.saved == 1 and h.engine.closed
    h.node.shutdown = lambda: None  # already done; the fixture calls it again


@pytest.mark.ros
def test_map_markers_are_latched_and_the_debug_image_is_built_only_on_demand(harness):
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    from visualization_msgs.msg import MarkerArray

    h = harness()
    assert h.publish_until(3_000_000_000)
    assert not h.node.out.wants("debug_image")  # nobody asked: the node did not render one
    late: list = []  # rviz started after the node: the keyframe markers must still reach it
    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    h.probe.create_subscription(MarkerArray, "/relocalizer/map_markers", late.append, latched)
    assert wait_for(lambda: late, 10.0), "no latched map markers"
    by_ns = {m.ns: m for m in late[-1].markers}
    assert len(by_ns["keyframes"].points) == 5 and by_ns["keyframes"].header.frame_id == "map"
    assert by_ns["keyframes"].points[4].y == pytest.approx(8.0)

    debug: list = []
    h.probe.create_subscription(Image, "/relocalizer/debug_image", debug.append, 10)
    assert wait_for(lambda: h.node.out.wants("debug_image"), 10.0)
    stamp = 4_000_000_000
    end = time.monotonic() + 10.0
    while not any(ns(m.header.stamp) == stamp for m in debug) and time.monotonic() < end:
        h.image_pub.publish(h.image(stamp))
        time.sleep(0.1)
    view = next(m for m in debug if ns(m.header.stamp) == stamp)
    assert view.encoding == "rgb8" and view.width > 64  # the query and the keyframe side by side
    # the candidates of this frame are highlighted in a marker of their own
    assert wait_for(lambda: any(m.ns == "candidates" and len(m.points) == 3 for m in late[-1].markers), 5.0)


@pytest.mark.ros
def test_compressed_transport_decodes_jpeg(harness):
    import cv2
    from sensor_msgs.msg import CompressedImage

    h = harness({"node.image_transport": "compressed"})
    assert h.node.image_topic.endswith("image/compressed")
    pub = h.probe.create_publisher(CompressedImage, "image/compressed", 10)
    rgb = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    msg = CompressedImage(format="rgb8; jpeg compressed bgr8")
    msg.header.stamp.sec, msg.header.frame_id = 9, "camera_optical"
    msg.data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()
    end = time.monotonic() + 10.0
    while not h.engine.stamps and time.monotonic() < end:
        pub.publish(msg)
        time.sleep(0.1)
    assert h.engine.stamps and h.engine.stamps[0] == pytest.approx(9.0)
    corrupt = CompressedImage(format="jpeg", data=b"\xff\xd8 not really a jpeg")
    corrupt.header.stamp.sec = 10
    pub.publish(corrupt)
    assert wait_for(lambda: h.node.worker.stats().errors >= 1, 5.0)
    assert "image/compressed" in h.node._status["last_error"]  # names the topic
    pub.publish(msg)  # and the node keeps going
    assert wait_for(lambda: len(h.engine.stamps) >= 2 and h.node._status["last_error"] == "", 5.0)
