"""Odometry and pose inputs of the node (no rclpy): real ROS 2 message definitions from rosbags,
through CDR and back, into the poses the node buffers (the buffer itself: test_ros_node.py)."""
from __future__ import annotations

import numpy as np
import pytest

from dejavu_ros.io.typestore import header, msg_class, typestore
from dejavu_ros.ros.pose_buffer import covariance_6x6, stamped_pose

STAMP_NS = 1_700_000_123_987_654_321


def pose_message(msgtype: str, stamp_ns: int, position, orientation, covariance):
    """A nav_msgs/Odometry or geometry_msgs/PoseWithCovarianceStamped as a ROS 2 driver would send it."""
    Point, Quaternion = msg_class("geometry_msgs/msg/Point"), msg_class("geometry_msgs/msg/Quaternion")
    Pose, PoseCov = msg_class("geometry_msgs/msg/Pose"), msg_class("geometry_msgs/msg/PoseWithCovariance")
    pose = PoseCov(pose=Pose(position=Point(*map(float, position)), orientation=Quaternion(*map(float, orientation))),
                   covariance=np.asarray(covariance, dtype=np.float64).reshape(36))
    if msgtype == "nav_msgs/msg/Odometry":
        Twist = msg_class("geometry_msgs/msg/TwistWithCovariance")
        Vector3 = msg_class("geometry_msgs/msg/Vector3")
        twist = Twist(twist=msg_class("geometry_msgs/msg/Twist")(linear=Vector3(0.0, 0.0, 0.0),
                                                                 angular=Vector3(0.0, 0.0, 0.0)),
                      covariance=np.zeros(36))
        msg = msg_class(msgtype)(header=header(stamp_ns, "odom"), child_frame_id="base_link", pose=pose, twist=twist)
    else:
        msg = msg_class(msgtype)(header=header(stamp_ns, "odom"), pose=pose)
    store = typestore()
    return store.deserialize_cdr(store.serialize_cdr(msg, msgtype), msgtype)


@pytest.mark.parametrize("msgtype", ["nav_msgs/msg/Odometry", "geometry_msgs/msg/PoseWithCovarianceStamped"])
def test_a_pose_message_keeps_its_stamp_pose_covariance_and_frame(msgtype):
    cov = np.diag([0.1, 0.2, 0.3, 0.01, 0.02, 0.03])
    cov[0, 1], cov[1, 0] = 0.05, 0.04  # unequal only to show each term keeps its place (ROS: row-major)
    q = np.array([0.0, 0.0, np.sin(0.3), np.cos(0.3)])
    pose = stamped_pose(pose_message(msgtype, STAMP_NS, [1.5, -2.0, 0.25], q, cov))
    assert pose.stamp_ns == STAMP_NS  # exact, not through float seconds
    assert pose.frame_id == "odom"
    np.testing.assert_allclose(pose.position, [1.5, -2.0, 0.25])
    np.testing.assert_allclose(pose.orientation, q)
    np.testing.assert_array_equal(pose.covariance, cov)


def test_an_all_zero_covariance_means_unknown():
    pose = stamped_pose(pose_message("nav_msgs/msg/Odometry", STAMP_NS, [0, 0, 0], [0, 0, 0, 1], np.zeros(36)))
    assert pose.covariance is None and covariance_6x6(np.zeros(36)) is None
