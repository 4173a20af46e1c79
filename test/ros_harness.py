"""The relocalizer node in-process, for the tests that need rclpy.

:class:`Harness` starts :class:`~dejavu_ros.ros.relocalizer_node.RelocalizerNode` next to a probe
node on one multi-threaded executor; the probe publishes images and records what the node sends.
:class:`FakeEngine` answers instantly with a fixed result so the adapter can be tested alone; the
real engine is passed in by the tests that need it, with the two-keyframe RobotCar map of
:func:`robotcar_map`. Without rclpy the ``ros`` fixture skips.
"""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from dejavu_ros.io.images import read_rgb
from dejavu_ros.config import DejavuConfig
from dejavu_ros.relocalization.engine import RelocalizationEngine
from dejavu_ros.matching.verification import Verification
from dejavu_ros.relocalization.result import Candidate, KeyframeDecision, PoseEstimate, RelocalizationResult
from dejavu_ros.resources import default_model_path

from conftest import shared

IDENTITY = [0.0, 0.0, 0.0, 1.0]


def robotcar(name: str) -> np.ndarray:
    return read_rgb(shared("robotcar_dejavu_triplets", f"image_{name}.png"))


@pytest.fixture
def robotcar_map(tmp_path) -> tuple[str, str]:
    """(path, model fingerprint) of a map built with the shipped model: {day anchor at x = 0 (id 1),
    another place at x = 100 (id 2)}."""
    if not default_model_path().is_file():
        pytest.skip("default model not shipped")
    cfg = DejavuConfig()
    cfg.node.map_path, cfg.features.device = str(tmp_path / "robotcar.db"), "cpu"
    engine = RelocalizationEngine.from_config(cfg, map_mode="map")
    assert engine.add_frame(robotcar("anchor_0"), 0.0, [0.0, 0.0, 0.0], IDENTITY).added
    assert engine.add_frame(robotcar("negative_0"), 1.0, [100.0, 0.0, 0.0], IDENTITY).added
    fingerprint = engine.fingerprint
    engine.close()
    return cfg.node.map_path, fingerprint


def rgb_image_msg(rgb: np.ndarray, stamp_ns: int, frame_id: str = "camera_optical"):
    """sensor_msgs/Image (rgb8) of an H×W×3 uint8 array."""
    from sensor_msgs.msg import Image

    msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding="rgb8", step=3 * rgb.shape[1])
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    msg.header.frame_id = frame_id
    msg.data = np.ascontiguousarray(rgb, dtype=np.uint8).tobytes()
    return msg


def wait_for(predicate, timeout_s: float = 5.0, period_s: float = 0.005) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(period_s)
    return predicate()


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
        self.odometry: list = []  # the odometry positions the node handed over, per frame
        self.route_resets = 0
        self.closed = False
        self.device = "cpu"
        self.fingerprint = "f00dfeed"
        self.trust_mismatch = ""  # RelocalizationEngine's: the calibration fits the model
        self.trust_fitted_on = "f00dfeed"

    @property
    def map_size(self) -> int:
        return len(self.positions)

    def relocalize(self, rgb, stamp, camera=None, odometry=None) -> RelocalizationResult:
        assert rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.dtype == np.uint8
        time.sleep(self.delay_s)
        self.stamps.append(stamp)
        self.odometry.append(None if odometry is None else np.asarray(odometry).copy())
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
                                    pose=pose, confidence=0.99, timings_ms={"total": self.delay_s * 1e3})

    def reset_route(self):
        self.route_resets += 1

    def add_frame(self, rgb, stamp, position, orientation, covariance=None, camera=None, depth=None,
                  source=""):
        self.added.append((stamp, np.asarray(position), source))
        self.positions = np.vstack([self.positions, position])
        self.orientations = np.vstack([self.orientations, orientation])
        return KeyframeDecision(True, "moved", len(self.positions) - 1)

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

    def __init__(self, rclpy, overrides: dict, delay_s: float = 0.0, probe_reliable: bool = False,
                 engine_factory=None):
        from rclpy.executors import MultiThreadedExecutor
        from rclpy.parameter import Parameter
        from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

        from dejavu_ros.ros.relocalizer_node import RelocalizerNode

        values = {"node.map_path": "/tmp/fake_map.db", **overrides}
        params = [Parameter(k, value=v) for k, v in values.items()]
        self.engine = None

        def factory(cfg):
            self.engine = engine_factory(cfg) if engine_factory else FakeEngine(cfg, delay_s)
            return self.engine

        self.node = RelocalizerNode(engine_factory=factory, parameter_overrides=params)
        self.probe = rclpy.create_node("relocalizer_probe")
        from geometry_msgs.msg import PoseArray, PoseWithCovarianceStamped
        from sensor_msgs.msg import Image, PointCloud2
        from diagnostic_msgs.msg import DiagnosticArray

        self.received: dict[str, list] = {k: [] for k in ("candidates", "pose", "matches", "scores", "diag")}
        # (stamp ns, monotonic time) of every message, kept even when the messages are not
        self.arrivals: dict[str, list[tuple[int, float]]] = {k: [] for k in self.received}
        self.keep_messages = True  # a long soak keeps only the arrival times
        for key, msg_type, topic in (("candidates", PoseArray, "/relocalizer/candidates"),
                                     ("pose", PoseWithCovarianceStamped, "/relocalizer/pose"),
                                     ("matches", PointCloud2, "/relocalizer/matches"),
                                     ("scores", PointCloud2, "/relocalizer/candidate_scores"),
                                     ("diag", DiagnosticArray, "/diagnostics")):
            self.probe.create_subscription(msg_type, topic, lambda msg, key=key: self._record(key, msg), 50)
        qos = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE) if probe_reliable \
            else qos_profile_sensor_data
        self.image_pub = self.probe.create_publisher(Image, "image", qos)
        self.executor = MultiThreadedExecutor(num_threads=4)
        self.executor.add_node(self.node)
        self.executor.add_node(self.probe)
        self._stop = threading.Event()

        def spin():  # a loop the harness can end before it destroys what the executor touches
            while not self._stop.is_set():
                self.executor.spin_once(timeout_sec=0.05)

        self.thread = threading.Thread(target=spin, daemon=True)
        self.thread.start()

    def _record(self, key: str, msg) -> None:
        self.arrivals[key].append((ns(msg.header.stamp), time.monotonic()))
        if self.keep_messages or key == "diag":
            self.received[key].append(msg)

    def image(self, stamp_ns: int, width: int = 64, height: int = 48, rgb: np.ndarray | None = None):
        """An rgb8 Image: ``rgb`` if given, else noise seeded by the stamp."""
        if rgb is None:
            rgb = np.random.default_rng(stamp_ns % 1000).integers(0, 256, (height, width, 3), dtype=np.uint8)
        return rgb_image_msg(rgb, stamp_ns)

    def publish_until(self, stamp_ns: int, key: str = "candidates", timeout_s: float = 10.0,
                      rgb: np.ndarray | None = None) -> bool:
        """Discovery takes a moment: republish the same image until its result shows up."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            self.image_pub.publish(self.image(stamp_ns, rgb=rgb))
            if wait_for(lambda: any(stamp == stamp_ns for stamp, _ in self.arrivals[key]), 0.2):
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
        # the spin ends first: one still inside spin_once would touch the guard conditions that
        # executor.shutdown and destroy_node destroy (an unhandled thread exception otherwise)
        self._stop.set()
        self.thread.join(5.0)
        self.executor.shutdown()
        self.node.destroy_node()
        self.probe.destroy_node()


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
