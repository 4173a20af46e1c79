"""Pose messages and stamp lookup (nearest / linear + slerp, tolerance, rejection of bad poses)."""
from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from dejavu_ros.output.bag_writer import BagWriter
from dejavu_ros.io.errors import PoseMessageError
from dejavu_ros.io.poses import PoseSample, PoseTrack, pose_from_message, read_pose_track
from dejavu_ros.io.typestore import header, msg_class

MS = 1_000_000


def yaw_quat(deg: float) -> np.ndarray:
    return Rotation.from_euler("z", deg, degrees=True).as_quat()


def sample(t_ms: int, x: float, yaw_deg: float = 0.0) -> PoseSample:
    return PoseSample(stamp_ns=t_ms * MS, position=np.array([x, 2 * x, 0.0]), orientation=yaw_quat(yaw_deg))


def ros_pose(x, q):
    Pose, Point = msg_class("geometry_msgs/msg/Pose"), msg_class("geometry_msgs/msg/Point")
    Quaternion = msg_class("geometry_msgs/msg/Quaternion")
    return Pose(position=Point(x=x, y=-x, z=1.0), orientation=Quaternion(x=q[0], y=q[1], z=q[2], w=q[3]))


def test_pose_messages_of_each_type():
    q = yaw_quat(30)
    cov = np.arange(36, dtype=float)
    PoseWithCovariance = msg_class("geometry_msgs/msg/PoseWithCovariance")
    stamped = msg_class("geometry_msgs/msg/PoseStamped")(header=header(5 * MS, "map"), pose=ros_pose(1.0, q))
    with_cov = msg_class("geometry_msgs/msg/PoseWithCovarianceStamped")(
        header=header(6 * MS, "map"), pose=PoseWithCovariance(pose=ros_pose(2.0, q), covariance=cov))
    Twc = msg_class("geometry_msgs/msg/TwistWithCovariance")
    Twist, V3 = msg_class("geometry_msgs/msg/Twist"), msg_class("geometry_msgs/msg/Vector3")
    zero = V3(x=0.0, y=0.0, z=0.0)
    odom = msg_class("nav_msgs/msg/Odometry")(
        header=header(7 * MS, "odom"), child_frame_id="base_link",
        pose=PoseWithCovariance(pose=ros_pose(3.0, q), covariance=np.zeros(36)),
        twist=Twc(twist=Twist(linear=zero, angular=zero), covariance=np.zeros(36)))
    a, b, c = pose_from_message(stamped), pose_from_message(with_cov), pose_from_message(odom)
    assert (a.stamp_ns, b.stamp_ns, c.stamp_ns) == (5 * MS, 6 * MS, 7 * MS)
    np.testing.assert_array_equal(b.position, [2.0, -2.0, 1.0])
    np.testing.assert_allclose(c.orientation, q)
    assert a.covariance is None and c.covariance is None  # all-zero covariance = not given
    np.testing.assert_array_equal(b.covariance, cov.reshape(6, 6))
    assert (c.frame_id, c.child_frame_id) == ("odom", "base_link")
    assert pose_from_message(odom, stamp_ns=42).stamp_ns == 42


def test_rclpy_style_pose_and_non_pose_message():
    msg = SimpleNamespace(header=SimpleNamespace(stamp=SimpleNamespace(sec=2, nanosec=5), frame_id="map"),
                          pose=SimpleNamespace(position=SimpleNamespace(x=1, y=2, z=3),
                                               orientation=SimpleNamespace(x=0, y=0, z=0, w=1)))
    s = pose_from_message(msg)
    assert s.stamp_ns == 2_000_000_005 and s.position.tolist() == [1, 2, 3]
    with pytest.raises(PoseMessageError, match=r"topic '/fix': .* is not a pose message"):
        pose_from_message(msg_class("std_msgs/msg/String")(data="x"), topic="/fix")


def test_linear_interpolation_and_slerp():
    track = PoseTrack().extend([sample(0, 0.0, 0.0), sample(100, 1.0, 90.0)])
    mid = track.lookup(25 * MS, tolerance_ns=80 * MS)
    np.testing.assert_allclose(mid.position, [0.25, 0.5, 0.0])
    assert Rotation.from_quat(mid.orientation).as_euler("zyx", degrees=True)[0] == pytest.approx(22.5)
    assert mid.stamp_ns == 25 * MS


def test_nearest_and_tolerance():
    track = PoseTrack().extend([sample(0, 0.0), sample(100, 1.0)])
    assert track.lookup(30 * MS, 40 * MS, "nearest").position[0] == 0.0
    assert track.lookup(70 * MS, 40 * MS, "nearest").position[0] == 1.0
    # linear needs both neighbours within tolerance; otherwise falls back to the nearest one
    assert track.lookup(30 * MS, 40 * MS, "linear").position[0] == 0.0
    assert track.lookup(50 * MS, 40 * MS) is None
    assert track.lookup(150 * MS, 40 * MS) is None  # no extrapolation beyond tolerance
    assert track.lookup(130 * MS, 40 * MS).position[0] == 1.0
    assert track.lookup(100 * MS, 0).position[0] == 1.0  # exact stamp
    with pytest.raises(ValueError, match="lookup method"):
        track.lookup(0, 0, "cubic")


def test_out_of_order_insertion_keeps_time_order():
    track = PoseTrack().extend([sample(200, 2.0), sample(0, 0.0), sample(100, 1.0)])
    assert track.first_stamp_ns == 0 and track.last_stamp_ns == 200 * MS
    assert track.lookup(150 * MS, 60 * MS).position[0] == pytest.approx(1.5)


def test_invalid_poses_are_rejected_with_a_warning(caplog):
    track = PoseTrack(name="/odom")
    bad_nan = sample(10, float("nan"))
    bad_norm = PoseSample(20 * MS, np.zeros(3), np.array([0.0, 0.0, 0.0, 2.0]))
    bad_inf_q = PoseSample(30 * MS, np.zeros(3), np.array([np.inf, 0, 0, 1.0]))
    near_unit = PoseSample(40 * MS, np.zeros(3), np.array([0.0, 0.0, 0.0, 1.0004]))
    with caplog.at_level(logging.WARNING):
        results = [track.add(s) for s in (bad_nan, bad_norm, bad_inf_q, near_unit)]
    assert results == [False, False, False, True]
    assert track.rejected == 3 and len(track) == 1
    assert np.linalg.norm(track.lookup(40 * MS, 0).orientation) == pytest.approx(1.0)
    assert "non-finite position" in caplog.text and "quaternion norm 2 is not 1" in caplog.text
    assert "/odom" in caplog.text


def test_streaming_helpers():
    track = PoseTrack(max_samples=3)
    for i in range(5):
        track.add(sample(i * 10, float(i)))
    assert len(track) == 3 and track.first_stamp_ns == 20 * MS
    assert track.is_pending(45 * MS, 5 * MS) and not track.is_pending(30 * MS, 5 * MS)
    track.prune(35 * MS)
    assert track.first_stamp_ns == 30 * MS and len(track) == 2


def test_read_pose_track_from_bag(tmp_path):
    Stamped = msg_class("geometry_msgs/msg/PoseStamped")
    with BagWriter(tmp_path / "bag") as bag:
        bag.add_topic("/pose", "geometry_msgs/msg/PoseStamped")
        for i in range(5):
            bag.write("/pose", i * 100 * MS + 1, Stamped(header=header(i * 100 * MS, "map"),
                                                         pose=ros_pose(float(i), yaw_quat(10 * i))))
    track = read_pose_track(tmp_path / "bag", "/pose")
    assert len(track) == 5
    pose = track.lookup(250 * MS, 60 * MS)
    assert pose.position[0] == pytest.approx(2.5)
    assert Rotation.from_quat(pose.orientation).as_euler("zyx", degrees=True)[0] == pytest.approx(25.0)
