"""The node's hand-off to navigation under real rclpy: odometry into the route filter, the
``~/relocalize`` recovery service, ``initialpose`` for AMCL / nav2 and ``map → odom`` on TF.

The math is tested without ROS in test_ros_handoff.py; here the topics, QoS and frames are.
Skipped without rclpy.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from ros_harness import harness, ros, wait_for  # noqa: F401  (fixtures)

pytestmark = pytest.mark.ros

# the camera sits 1.5 m ahead of and 1.2 m above the base, looking forward (optical frame: z ahead)
CAMERA_IN_BASE = (np.array([1.5, 0.0, 1.2]), Rotation.from_euler("xyz", [-90, 0, -90], degrees=True).as_quat())


def _listen(h, msg_type, topic: str, qos=10) -> list:
    got: list = []
    h.probe.create_subscription(msg_type, topic, got.append, qos)
    return got


def _publish_static_camera(h):
    from geometry_msgs.msg import TransformStamped
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from tf2_msgs.msg import TFMessage

    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    pub = h.probe.create_publisher(TFMessage, "/tf_static", latched)
    t = TransformStamped()
    t.header.frame_id, t.child_frame_id = "base_link", "camera_optical"
    (t.transform.translation.x, t.transform.translation.y, t.transform.translation.z) = CAMERA_IN_BASE[0]
    q = CAMERA_IN_BASE[1]
    (t.transform.rotation.x, t.transform.rotation.y, t.transform.rotation.z, t.transform.rotation.w) = q
    pub.publish(TFMessage(transforms=[t]))
    return pub  # kept alive by the caller: a latched publisher must outlive the late subscriber


def _drive_odometry(h, node_buffer=None) -> None:
    """Odometry along x at 1 s … 2.95 s, x = 0.1 m per 50 ms sample, paced like a real odometry
    source (the node keeps a sensor-data QoS queue of a few messages)."""
    import time

    from nav_msgs.msg import Odometry

    pub = h.probe.create_publisher(Odometry, "odom", 50)
    if node_buffer is not None:
        assert wait_for(lambda: pub.get_subscription_count() > 0, 10.0), "the node does not subscribe to 'odom'"
    for i in range(40):
        msg = Odometry()
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(1_000_000_000 + i * 50_000_000, 1_000_000_000)
        msg.header.frame_id, msg.child_frame_id = "odom", "base_link"
        msg.pose.pose.position.x = 0.1 * i
        msg.pose.pose.orientation.w = 1.0
        pub.publish(msg)
        time.sleep(0.005)
    if node_buffer is not None:
        assert wait_for(lambda: len(node_buffer) >= 30, 5.0), f"only {len(node_buffer)} of 40 odometry messages arrived"


def _xyz(p) -> np.ndarray:
    return np.array([p.x, p.y, p.z])


def _quat(q) -> np.ndarray:
    return np.array([q.x, q.y, q.z, q.w])


def test_odometry_reaches_the_route_filter_and_is_ignored_when_off(harness):
    h = harness()
    _drive_odometry(h, h.node.odometry)
    assert h.publish_until(2_000_000_000), "no result"
    handed = [o for o in h.engine.odometry if o is not None]
    assert handed, "the node did not hand the odometry at the image stamp to the engine"
    assert handed[-1][0] == pytest.approx(2.0, abs=1e-6)  # x at stamp 2.0 s (sample 20: 0.1 × 20)

    off = harness({"node.use_odometry": False})
    _drive_odometry(off)  # nobody listens: published a few times, then the image
    assert off.publish_until(2_000_000_000)
    assert all(o is None for o in off.engine.odometry)


def test_relocalize_service_resets_the_route_and_answers_with_the_pose(harness):
    import threading

    from std_srvs.srv import Trigger

    h = harness({"node.relocalize_frames": 3})
    client = h.probe.create_client(Trigger, "/relocalizer/relocalize")
    assert client.wait_for_service(timeout_sec=10.0)
    future = client.call_async(Trigger.Request())
    assert wait_for(lambda: h.engine.route_resets == 1, 5.0), "~/relocalize did not reset the route filter"
    stop = threading.Event()

    def feed():
        stamp = 5_000_000_000
        while not stop.is_set():
            h.image_pub.publish(h.image(stamp))
            stamp += 100_000_000
            stop.wait(0.1)
    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        assert wait_for(future.done, 20.0), "~/relocalize never answered"
    finally:
        stop.set()
        feeder.join(2.0)
    reply = future.result()
    assert reply.success, reply.message
    assert "keyframe 3" in reply.message and "confidence 0.990" in reply.message


def test_initialpose_is_the_base_pose_and_tf_corrects_odometry(harness):
    from geometry_msgs.msg import PoseWithCovarianceStamped
    from tf2_msgs.msg import TFMessage

    h = harness({"node.publish_initialpose": True, "node.publish_tf": True})
    initial = _listen(h, PoseWithCovarianceStamped, "initialpose")
    tf = _listen(h, TFMessage, "/tf")
    static = _publish_static_camera(h)
    _drive_odometry(h, h.node.odometry)
    stamp = 2_000_000_000
    assert wait_for(lambda: "camera_optical" in h.node._static_tf, 10.0), "/tf_static not received"
    end_ok = False
    for _ in range(50):
        h.image_pub.publish(h.image(stamp))
        if wait_for(lambda: initial and tf, 0.2):
            end_ok = True
            break
    assert end_ok, "no initialpose / map → odom after a trusted relocalization"
    del static

    # FakeEngine's camera pose: keyframe 3 at (3, 6, 0) + 0.5, identity orientation
    camera_in_map = (np.array([3.5, 6.5, 0.5]), np.array([0.0, 0.0, 0.0, 1.0]))
    r_cb = Rotation.from_quat(CAMERA_IN_BASE[1])
    base_in_camera = (-(r_cb.inv().apply(CAMERA_IN_BASE[0])), r_cb.inv().as_quat())
    expect_pos = camera_in_map[0] + base_in_camera[0]
    msg = initial[-1]
    assert msg.header.frame_id == "map"
    assert np.allclose(_xyz(msg.pose.pose.position), expect_pos, atol=1e-6)
    expect_rot = Rotation.from_quat(base_in_camera[1])
    got_rot = Rotation.from_quat(_quat(msg.pose.pose.orientation))
    assert (expect_rot.inv() * got_rot).magnitude() < 1e-6
    assert msg.pose.covariance[0] == pytest.approx(0.1)

    edge = tf[-1].transforms[0]
    assert (edge.header.frame_id, edge.child_frame_id) == ("map", "odom")
    # map → odom · odom → base (x = 2.0 at the image stamp) lands on the published base pose
    r_mo = Rotation.from_quat(_quat(edge.transform.rotation))
    base_via_odom = _xyz(edge.transform.translation) + r_mo.apply([2.0, 0.0, 0.0])
    assert np.allclose(base_via_odom, expect_pos, atol=1e-6)


def test_no_hand_off_without_the_camera_extrinsic(harness):
    from geometry_msgs.msg import PoseWithCovarianceStamped

    h = harness({"node.publish_initialpose": True})
    initial = _listen(h, PoseWithCovarianceStamped, "initialpose")
    assert h.publish_until(3_000_000_000, key="pose"), "the relocalized pose itself must still be published"
    assert not wait_for(lambda: initial, 1.0), "initialpose published with no base_link → camera transform"


def test_low_confidence_is_not_handed_to_amcl(harness):
    from geometry_msgs.msg import PoseWithCovarianceStamped

    h = harness({"node.publish_initialpose": True, "node.initialpose_min_confidence": 0.999})
    initial = _listen(h, PoseWithCovarianceStamped, "initialpose")
    static = _publish_static_camera(h)
    assert wait_for(lambda: "camera_optical" in h.node._static_tf, 10.0)
    assert h.publish_until(4_000_000_000, key="pose")
    assert not wait_for(lambda: initial, 1.0), "a 0.99 pose reached initialpose above a 0.999 threshold"
    del static
