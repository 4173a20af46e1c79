"""The relocalizer node.

The first part tests the node's pure-Python helpers (frame slot and worker, pose pairing,
diagnostics, parameter rules) and runs everywhere. The second part starts the real node
in-process with a fake engine and talks to it over ROS topics and services; it needs rclpy and
is skipped without a ROS 2 install.
"""
from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np
import pytest

from dejavu_ros.config import DejavuConfig, specs
from dejavu_ros.errors import DejavuError
from dejavu_ros.io.messages import ERROR, OK, WARN
from dejavu_ros.relocalization.result import Candidate, PoseEstimate, RelocalizationResult, Verification
from dejavu_ros.ros.health import NodeState, assess
from dejavu_ros.ros.parameters import check_changes, descriptor_fields, unknown_overrides
from dejavu_ros.ros.pose_buffer import PoseBuffer, StampedPose, covariance_6x6
from dejavu_ros.ros.worker import LatestFrameWorker
from dejavu_ros.schema import ConfigError


def wait_for(predicate, timeout_s: float = 5.0, period_s: float = 0.005) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(period_s)
    return predicate()


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
# In-process node tests (need rclpy)
# =================================================================================================

class FakeEngine:
    """Stands in for RelocalizationEngine: a fixed 5-keyframe map, answers after ``delay_s``."""

    def __init__(self, cfg: DejavuConfig, delay_s: float = 0.0):
        self.cfg = cfg
        self.delay_s = delay_s
        self.positions = np.array([[float(i), 2.0 * i, 0.0] for i in range(5)])
        self.orientations = np.tile([0.0, 0.0, 0.0, 1.0], (5, 1))
        self.stamps: list[float] = []
        self.added: list = []
        self.configs: list[DejavuConfig] = []
        self.saved = 0
        self.reloaded = 0
        self.closed = False
        self.device = "cpu"
        self.fingerprint = "f00dfeed"

    @property
    def map_size(self) -> int:
        return len(self.positions)

    def relocalize(self, rgb, stamp, camera=None) -> RelocalizationResult:
        assert rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.dtype == np.uint8
        time.sleep(self.delay_s)
        self.stamps.append(stamp)
        candidates = [Candidate(keyframe_id=i, rank=r, shortlist_score=0.9 - 0.1 * r, cx_score=0.8 - 0.1 * r,
                                position=self.positions[i], orientation=self.orientations[i],
                                inliers=30 if r == 0 else 0) for r, i in enumerate((3, 1, 4))]
        xy = np.array([[10.0, 12.0], [40.0, 30.0], [70.0, 50.0]])
        verification = Verification(keyframe_id=3, query_xy=xy, map_xy=xy + 1.0,
                                    scores=np.array([0.9, 0.8, 0.7]), num_matches=6, inlier_ratio=0.5,
                                    model="essential", matrix=np.eye(3), accepted=True)
        pose = PoseEstimate(position=self.positions[3] + 0.5, orientation=self.orientations[3],
                            covariance=np.eye(6) * 0.1, source="keyframe", inliers=3)
        return RelocalizationResult(stamp=stamp, image_size=(rgb.shape[1], rgb.shape[0]),
                                    status="relocalized", candidates=candidates, verification=verification,
                                    pose=pose, timings_ms={"total": self.delay_s * 1e3})

    def add_frame(self, rgb, stamp, position, orientation, covariance=None, camera=None, depth=None,
                  source=""):
        self.added.append((stamp, np.asarray(position), source))
        self.positions = np.vstack([self.positions, position])
        self.orientations = np.vstack([self.orientations, orientation])
        return True, "moved", len(self.positions) - 1

    def update_config(self, cfg):
        self.configs.append(cfg)

    def save_map(self):
        self.saved += 1
        return "/tmp/fake_map.db"

    def reload_map(self):
        self.reloaded += 1

    def keyframe_poses(self):
        return np.arange(len(self.positions)), self.positions, self.orientations

    def keyframe_thumbnail(self, keyframe_id):
        return np.full((30, 40, 3), 100, dtype=np.uint8)

    def keyframe_image_size(self, keyframe_id):
        return (40, 30)

    def close(self):
        self.closed = True


@pytest.fixture(scope="module")
def ros():
    rclpy = pytest.importorskip("rclpy")
    rclpy.init()
    yield rclpy
    rclpy.try_shutdown()


class Harness:
    """The node under test plus a probe node, spun by a multi-threaded executor on a thread."""

    def __init__(self, rclpy, overrides: dict, delay_s: float = 0.0, probe_reliable: bool = False):
        from rclpy.executors import MultiThreadedExecutor
        from rclpy.parameter import Parameter
        from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

        from dejavu_ros.ros.relocalizer_node import RelocalizerNode

        values = {"node.map_path": "/tmp/fake_map.db", **overrides}
        params = [Parameter(k, value=v) for k, v in values.items()]
        self.engine = None

        def factory(cfg):
            self.engine = FakeEngine(cfg, delay_s)
            return self.engine

        self.node = RelocalizerNode(engine_factory=factory, parameter_overrides=params)
        self.probe = rclpy.create_node("relocalizer_probe")
        from geometry_msgs.msg import PoseArray, PoseWithCovarianceStamped
        from sensor_msgs.msg import Image, PointCloud2
        from diagnostic_msgs.msg import DiagnosticArray

        self.received: dict[str, list] = {k: [] for k in ("candidates", "pose", "matches", "scores", "diag")}
        for key, msg_type, topic in (("candidates", PoseArray, "/relocalizer/candidates"),
                                     ("pose", PoseWithCovarianceStamped, "/relocalizer/pose"),
                                     ("matches", PointCloud2, "/relocalizer/matches"),
                                     ("scores", PointCloud2, "/relocalizer/candidate_scores"),
                                     ("diag", DiagnosticArray, "/diagnostics")):
            self.probe.create_subscription(msg_type, topic, self.received[key].append, 50)
        qos = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE) if probe_reliable \
            else qos_profile_sensor_data
        self.image_pub = self.probe.create_publisher(Image, "image", qos)
        self.Image = Image
        self.executor = MultiThreadedExecutor(num_threads=4)
        self.executor.add_node(self.node)
        self.executor.add_node(self.probe)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def image(self, stamp_ns: int, width: int = 64, height: int = 48):
        msg = self.Image()
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
        msg.header.frame_id = "camera_optical"
        msg.height, msg.width, msg.encoding, msg.step = height, width, "rgb8", 3 * width
        msg.data = np.random.default_rng(stamp_ns % 1000).integers(0, 256, height * width * 3,
                                                                   dtype=np.uint8).tobytes()
        return msg

    def publish_until(self, stamp_ns: int, key: str = "candidates", timeout_s: float = 10.0) -> bool:
        """Discovery takes a moment: republish the same image until its result shows up."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            self.image_pub.publish(self.image(stamp_ns))
            if wait_for(lambda: any(ns(m.header.stamp) == stamp_ns for m in self.received[key]), 0.2):
                return True
        return False

    def call(self, service: str, timeout_s: float = 10.0):
        from std_srvs.srv import Trigger

        client = self.probe.create_client(Trigger, service)
        assert client.wait_for_service(timeout_sec=timeout_s), f"{service} not available"
        future = client.call_async(Trigger.Request())
        assert wait_for(future.done, timeout_s), f"{service} did not answer"
        return future.result()

    def close(self):
        self.node.shutdown()
        self.executor.shutdown()
        self.node.destroy_node()
        self.probe.destroy_node()
        self.thread.join(5.0)


def ns(stamp) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


@pytest.fixture
def harness(ros, request):
    opened = []

    def make(overrides=None, **kw):
        h = Harness(ros, overrides or {}, **kw)
        opened.append(h)
        return h

    yield make
    for h in opened:
        h.close()


@pytest.mark.ros
@pytest.mark.parametrize("reliable", [False, True], ids=["sensor_data", "reliable"])
def test_results_arrive_stamped_with_the_image(harness, reliable):
    from dejavu_ros.io.messages import cloud_to_array

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


@pytest.mark.ros
def test_services_answer(harness):
    h = harness({"node.mode": "on_demand"})
    assert h.call("/relocalizer/save_map").success and h.engine.saved == 1
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
    for i in range(200):
        h.image_pub.publish(h.image(2_000_000_000 + i * 1_000_000))
    assert wait_for(lambda: h.node.worker.stats().received >= 20, 10.0)
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
