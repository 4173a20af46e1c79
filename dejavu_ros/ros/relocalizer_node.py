"""The ``relocalizer`` ROS 2 node: camera images in, ranked keyframe candidates and a trusted pose out.

Thin by design: parameters come from the config schema, images are decoded by
:mod:`dejavu_ros.io.images`, relocalization is the engine's, messages are built by
:mod:`dejavu_ros.output.messages`, the hand-off math (``initialpose``, ``map → odom``) is
:mod:`dejavu_ros.ros.handoff`. Subscription callbacks only hand the newest frame to a worker
thread, so a slow engine drops frames instead of stalling the executor. Topics, services and
parameters: README, "ROS 2 node".
"""
from __future__ import annotations

import signal
import threading
import time
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np
import rclpy
from rcl_interfaces.msg import SetParametersResult
from rclpy import executors
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.logging import get_logger
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from std_srvs.srv import Trigger

from ..config import DejavuConfig
from ..errors import DejavuError
from ..io.camera_info import camera_info_to_intrinsics
from ..io.images import image_to_rgb
from ..io.typestore import stamp_to_ns
from ..output.messages import MessageTypes
from ..relocalization.result import KeyframeDecision
from ..schema import ConfigError
from . import handoff
from .health import NodeState, assess
from .parameters import check_changes, declare_schema_parameters, unknown_overrides
from .pose_buffer import PoseBuffer, StampedPose, stamped_pose
from .result_publisher import ResultPublisher
from .topics import PUBLISHED, SUBSCRIBED
from .worker import LatestFrameWorker

ONCE_TIMEOUT_S = 30.0  # ~/relocalize_once waits this long for a frame and its result
SHUTDOWN_TIMEOUT_S = 30.0  # the frame in progress may take this long before the map is committed


def default_engine(cfg: DejavuConfig) -> Any:
    from ..relocalization.engine import RelocalizationEngine

    return RelocalizationEngine.from_config(cfg, map_mode=cfg.node.map_mode)


def image_qos(reliable: bool) -> QoSProfile:
    """Sensor-data QoS (best effort, keep last 5); reliable for e.g. ``ros2 bag play`` at full rate."""
    if not reliable:
        return qos_profile_sensor_data
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)


class RelocalizerNode(Node):
    """Relocalizes every camera frame against a keyframe map (or, in mapping mode, builds the map).

    Subscribes ``image`` (or ``image/compressed``), ``camera_info``, ``odom`` (the route filter's motion
    in localize mode; with ``pose`` the keyframe poses in mapping mode). Publishes ``~/candidates``,
    ``~/candidate_scores``, ``~/pose``, ``~/matches``, ``~/debug_image``, ``~/map_markers``,
    ``/diagnostics`` and, when enabled, ``initialpose`` and ``map → odom`` on TF. Services
    ``~/save_map``, ``~/reload_map``, ``~/relocalize_once``, ``~/relocalize``. ``engine_factory`` builds
    the engine from the parameters (tests pass a stand-in).
    """

    def __init__(self, engine_factory: Callable[[DejavuConfig], Any] = default_engine,
                 node_name: str = "relocalizer", **node_kwargs: Any):
        super().__init__(node_name, **node_kwargs)
        self.cfg = declare_schema_parameters(self)
        typos = unknown_overrides(getattr(self, "_parameter_overrides", {}).keys())
        if typos:
            self.get_logger().warning(f"ignoring unknown parameter(s): {', '.join(typos)}")
        node_cfg = self.cfg.node
        self.mt = MessageTypes.from_rclpy()
        self.engine = engine_factory(self.cfg)
        self._engine_lock = threading.Lock()
        self._cfg_lock = threading.Lock()
        self._pending_cfg: DejavuConfig | None = None
        self._camera_info: Any = None
        self._intrinsics: tuple[Any, Any] = (None, None)  # (CameraInfo msg, CameraIntrinsics)
        self._last_image_at: float | None = None
        self._status = {"last_status": "", "last_error": "", "relocalized": 0, "keyframes_added": 0}
        self.poses = PoseBuffer()
        self.odometry = PoseBuffer()
        self._relocalize_request: handoff.RelocalizeRequest | None = None
        self._map_to_odom: handoff.Transform | None = None
        self.out = ResultPublisher(self, self.mt, node_cfg.map_frame)

        sensors, services, timers = (MutuallyExclusiveCallbackGroup() for _ in range(3))
        qos = image_qos(node_cfg.reliable_qos)
        if node_cfg.image_transport == "compressed":
            self.image_topic = "image/compressed"
            image_type = self.mt.cls(SUBSCRIBED["image/compressed"])
        else:
            self.image_topic = "image"
            image_type = self.mt.cls(SUBSCRIBED["image"])
        image_sub = self.create_subscription(image_type, self.image_topic, self._on_image, qos,
                                             callback_group=sensors)
        self.image_topic = image_sub.topic_name  # fully resolved, after remapping
        info_sub = self.create_subscription(self.mt.cls(SUBSCRIBED["camera_info"]), "camera_info",
                                            self._on_camera_info, qos, callback_group=sensors)
        self.camera_info_topic = info_sub.topic_name
        if node_cfg.map_mode == "map":
            for topic in ("odom", "pose"):
                self.create_subscription(self.mt.cls(SUBSCRIBED[topic]), topic, self._on_pose, qos,
                                         callback_group=sensors)
        elif node_cfg.use_odometry:
            self.create_subscription(self.mt.cls(SUBSCRIBED["odom"]), "odom", self._on_odometry, qos,
                                     callback_group=sensors)
        self._static_tf: dict = {}  # child frame → /tf_static message (the camera's extrinsic comes from it)
        if node_cfg.publish_initialpose or node_cfg.publish_tf:
            latched = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE,
                                 durability=DurabilityPolicy.TRANSIENT_LOCAL)
            self.create_subscription(self.mt.cls(SUBSCRIBED["/tf_static"]), "/tf_static", self._on_tf_static,
                                     latched, callback_group=sensors)
        self._initialpose = (self.create_publisher(self.mt.cls(PUBLISHED["initialpose"]),
                                                   "initialpose", 10) if node_cfg.publish_initialpose else None)
        self._tf_pub = self.create_publisher(self.mt.cls(PUBLISHED["/tf"]), "/tf", 10) \
            if node_cfg.publish_tf else None
        self.create_service(Trigger, "~/save_map", self._srv_save_map, callback_group=services)
        self.create_service(Trigger, "~/reload_map", self._srv_reload_map, callback_group=services)
        self.create_service(Trigger, "~/relocalize_once", self._srv_relocalize_once, callback_group=services)
        self.create_service(Trigger, "~/relocalize", self._srv_relocalize, callback_group=services)

        self.worker = LatestFrameWorker(self._process, max_rate=node_cfg.max_rate,
                                        on_demand=node_cfg.mode == "on_demand", on_error=self._on_error)
        self.worker.start()
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.create_timer(node_cfg.diagnostics_period_s, self._publish_diagnostics, callback_group=timers)
        if node_cfg.publish_tf:
            self.create_timer(node_cfg.tf_period_s, self._republish_tf, callback_group=timers)
        self.out.refresh_map(self.engine, self._now_ns())
        self.get_logger().info(
            f"{node_cfg.map_mode} mode ({node_cfg.mode}): map {node_cfg.map_path or '-'} with "
            f"{self.engine.map_size} keyframes, device {self.engine.device}, "
            f"model {self.engine.fingerprint}; "
            f"listening on {self.image_topic} "
            f"({'reliable' if node_cfg.reliable_qos else 'sensor-data'} QoS)")

    # --- subscriptions: never block ---------------------------------------------------------

    def _on_image(self, msg: Any) -> None:
        self._last_image_at = time.monotonic()
        self.worker.submit(msg)

    def _on_camera_info(self, msg: Any) -> None:
        self._camera_info = msg

    def _on_pose(self, msg: Any) -> None:
        self.poses.add(stamped_pose(msg))

    def _on_odometry(self, msg: Any) -> None:
        self.odometry.add(stamped_pose(msg))

    def _on_tf_static(self, msg: Any) -> None:
        for t in msg.transforms:
            self._static_tf[str(t.child_frame_id).lstrip("/")] = t

    # --- worker thread ----------------------------------------------------------------------

    def _process(self, msg: Any) -> Any:
        stamp_ns = stamp_to_ns(msg.header.stamp)
        rgb = image_to_rgb(msg, topic=self.image_topic)
        camera = self._camera()
        with self._engine_lock:
            self._apply_pending_config()
            if self.cfg.node.map_mode == "map":
                return self._add_keyframe(rgb, stamp_ns, camera)
            moved = self.odometry.nearest(stamp_ns, self.cfg.node.pose_tolerance_s) if len(self.odometry) else None
            result = self.engine.relocalize(rgb, stamp_ns * 1e-9, camera,
                                            odometry=None if moved is None else moved.position)
            self.out.publish_result(result, stamp_ns, msg.header.frame_id, rgb, self.engine)
        if result.relocalized:
            self._hand_off(result, stamp_ns, msg.header.frame_id, moved)
        request = self._relocalize_request
        if request is not None:
            request.offer(result)
        self._status["last_status"] = result.status
        self._status["relocalized"] += int(result.relocalized)
        self._status["last_error"] = ""
        return result

    def _add_keyframe(self, rgb: np.ndarray, stamp_ns: int, camera: Any) -> KeyframeDecision:
        tolerance = self.cfg.node.pose_tolerance_s
        pose = self.poses.nearest(stamp_ns, tolerance)
        if pose is None:
            reason = f"no pose on 'odom' or 'pose' within {tolerance} s of the image"
            self.get_logger().warning(reason, throttle_duration_sec=5.0)
            self._status["last_status"] = "no_pose"
            return KeyframeDecision(False, reason)
        decision = self.engine.add_frame(rgb, stamp_ns * 1e-9, pose.position, pose.orientation,
                                         covariance=pose.covariance, camera=camera, source=self.image_topic)
        if decision.added:
            self._status["keyframes_added"] += 1
            self.out.refresh_map(self.engine, stamp_ns)
        self._status["last_status"] = "keyframe_added" if decision.added else "keyframe_skipped"
        self._status["last_error"] = ""
        return decision

    def _camera(self) -> Any:
        msg = self._camera_info
        if msg is None:
            return None
        if self._intrinsics[0] is not msg:
            try:
                self._intrinsics = (msg, camera_info_to_intrinsics(msg, topic=self.camera_info_topic))
            except DejavuError as exc:
                self.get_logger().warning(f"ignoring camera_info: {exc}", throttle_duration_sec=10.0)
                self._intrinsics = (msg, None)
        return self._intrinsics[1]

    def _on_error(self, exc: BaseException) -> None:
        self._status["last_error"] = str(exc) or type(exc).__name__
        if isinstance(exc, DejavuError):
            self.get_logger().error(f"frame skipped: {exc}", throttle_duration_sec=2.0)
        else:
            self.get_logger().error(f"frame failed: {exc!r}", throttle_duration_sec=2.0)

    # --- hand-off to navigation (initialpose, map → odom) ----------------------------------------

    def _base_in_camera(self, camera_frame: str) -> handoff.Transform | None:
        """T_camera_base from /tf_static (logged when the chain is not there)."""
        from ..io.extrinsics import extrinsic_from_tf

        try:
            ext = extrinsic_from_tf([SimpleNamespace(transforms=list(self._static_tf.values()))],
                                    self.cfg.node.base_frame, camera_frame)
        except DejavuError as exc:
            self.get_logger().warning(f"cannot hand the pose off: {exc}", throttle_duration_sec=10.0)
            return None
        return handoff.inverse((ext.translation, ext.rotation.as_quat()))

    def _hand_off(self, result: Any, stamp_ns: int, camera_frame: str, odom: StampedPose | None) -> None:
        """``initialpose`` and ``map → odom`` from a trusted pose (README: "Hand-off to navigation")."""
        node_cfg = self.cfg.node
        if self._initialpose is None and self._tf_pub is None:
            return
        base_in_camera = self._base_in_camera(camera_frame)
        if base_in_camera is None:
            return
        base_in_map = handoff.base_pose((result.pose.position, result.pose.orientation), base_in_camera)
        if self._initialpose is not None and result.confidence >= node_cfg.initialpose_min_confidence:
            self._initialpose.publish(self.out.pose_msg(*base_in_map, result.pose.covariance, stamp_ns))
        if self._tf_pub is not None:
            if odom is None:
                self.get_logger().warning("map → odom needs odometry at the image stamp ('odom' topic)",
                                          throttle_duration_sec=10.0)
                return
            self._map_to_odom = handoff.map_to_odom(base_in_map, (odom.position, odom.orientation))
            self._republish_tf()

    def _republish_tf(self) -> None:
        """The latest map → odom, stamped now (consumers look it up at their own stamps, as with AMCL)."""
        if self._map_to_odom is None or self._tf_pub is None:
            return
        edge = self.out.transform_msg(self._map_to_odom, self._now_ns(), self.cfg.node.map_frame,
                                      self.cfg.node.odom_frame)
        self._tf_pub.publish(self.mt.new("tf2_msgs/msg/TFMessage", transforms=[edge]))

    # --- parameters -------------------------------------------------------------------------

    def _on_set_parameters(self, params: list) -> SetParametersResult:
        try:
            new_cfg = check_changes(self.cfg, {p.name: p.value for p in params})
        except ConfigError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        if new_cfg is not self.cfg:
            with self._cfg_lock:
                self.cfg = self._pending_cfg = new_cfg
            self.worker.set_max_rate(new_cfg.node.max_rate)
        return SetParametersResult(successful=True, reason="")

    def _apply_pending_config(self) -> None:
        """Hand parameter changes to the engine between frames (called with the engine lock held)."""
        with self._cfg_lock:
            cfg, self._pending_cfg = self._pending_cfg, None
        if cfg is not None:
            self.engine.update_config(cfg)

    # --- services ---------------------------------------------------------------------------

    def _srv_save_map(self, _request: Any, response: Any) -> Any:
        try:
            with self._engine_lock:
                path = self.engine.save_map()
            if path is None:
                response.success, response.message = False, "no map is open (node.map_path is empty)"
            elif self.cfg.node.map_mode != "map":
                response.success = False
                response.message = (f"nothing saved: {path} is open read-only in localize mode "
                                    f"({self.engine.map_size} keyframes, unchanged)")
            else:
                response.success = True
                response.message = f"{self.engine.map_size} keyframes in {path}"
        except DejavuError as exc:
            response.success, response.message = False, str(exc)
        return response

    def _srv_reload_map(self, _request: Any, response: Any) -> Any:
        try:
            with self._engine_lock:
                self.engine.reload_map()
                self.out.refresh_map(self.engine, self._now_ns())
            response.success, response.message = True, f"reloaded {self.engine.map_size} keyframes"
        except DejavuError as exc:
            response.success, response.message = False, str(exc)
        return response

    def _srv_relocalize_once(self, _request: Any, response: Any) -> Any:
        reply = self.worker.request_once(ONCE_TIMEOUT_S)
        if not reply.done:
            response.success, response.message = False, reply.message
        elif isinstance(reply.result, KeyframeDecision):  # mapping mode
            decision = reply.result
            response.success = decision.added
            response.message = (f"keyframe {decision.keyframe_id} added" if decision.added
                                else f"no keyframe: {decision.reason}")
        else:
            response.success, response.message = reply.result.relocalized, reply.result.summary()
        return response

    def _srv_relocalize(self, _request: Any, response: Any) -> Any:
        """Global relocalization (a kidnapped robot): forget the recent frames, wait for a trusted pose."""
        frames = self.cfg.node.relocalize_frames
        request = handoff.RelocalizeRequest(frames=frames)
        with self._engine_lock:
            if hasattr(self.engine, "reset_route"):
                self.engine.reset_route()
            self._relocalize_request = request
        patience = ONCE_TIMEOUT_S + frames * max(1.0, 2.0 * self.cfg.node.latency_warn_s)
        finished = request.done.wait(patience)
        self._relocalize_request = None
        if request.result is not None:
            p = request.result.pose.position
            response.success = True
            response.message = (f"relocalized after {request.tried} frame(s): keyframe {request.result.keyframe_id}, "
                                f"confidence {request.result.confidence:.3f}, position {p[0]:.2f} {p[1]:.2f} {p[2]:.2f}")
        else:
            response.success = False
            response.message = (f"no trusted pose in {request.tried} frame(s)" if finished
                                else f"timed out after {patience:.0f} s ({request.tried} frame(s) arrived)")
        return response

    # --- diagnostics and shutdown -----------------------------------------------------------

    def _publish_diagnostics(self) -> None:
        node_cfg = self.cfg.node
        since = None if self._last_image_at is None else time.monotonic() - self._last_image_at
        state = NodeState(name=f"{self.get_name()}: relocalization", map_mode=node_cfg.map_mode,
                          mode=node_cfg.mode, map_size=int(self.engine.map_size),
                          device=str(self.engine.device), fingerprint=str(self.engine.fingerprint),
                          latency_warn_s=node_cfg.latency_warn_s, seconds_since_image=since,
                          image_timeout_s=max(5.0, 3 * node_cfg.diagnostics_period_s),
                          trust_mismatch=self.engine.trust_mismatch, trust_fitted_on=self.engine.trust_fitted_on,
                          **self._status)
        self.out.publish_diagnostics(assess(self.worker.stats(), state), self._now_ns())

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def shutdown(self) -> None:
        """Stop the worker after its current frame; commit the map in mapping mode; release the engine."""
        if not self.worker.stop(SHUTDOWN_TIMEOUT_S):
            self.get_logger().warning("the worker did not finish its frame in time")
        if not self._engine_lock.acquire(timeout=SHUTDOWN_TIMEOUT_S):
            self.get_logger().error("the engine is still busy; closing without committing the map")
            return
        try:
            if self.cfg.node.map_mode == "map":
                try:
                    path = self.engine.save_map()
                    self.get_logger().info(f"map committed: {self.engine.map_size} keyframes in {path}")
                except DejavuError as exc:
                    self.get_logger().error(f"could not commit the map: {exc}")
            self.engine.close()
        finally:
            self._engine_lock.release()


def main(args: list[str] | None = None) -> int:
    """Entry point of the ``relocalizer`` executable."""
    rclpy.init(args=args)
    external_shutdown = getattr(executors, "ExternalShutdownException", KeyboardInterrupt)
    node, rc = None, 0
    try:
        node = RelocalizerNode()
        executor = executors.MultiThreadedExecutor(num_threads=4)
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, external_shutdown):
        pass
    except DejavuError as exc:
        get_logger("relocalizer").fatal(str(exc))
        rc = 2
    finally:
        # Ctrl-C in a terminal reaches the node twice (from the terminal and forwarded by ros2
        # launch): ignore the second so the frame in progress finishes and the map is committed
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if node is not None:
            node.shutdown()
            node.destroy_node()
        rclpy.try_shutdown()
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
