"""The hand-off math the node uses for initialpose and map → odom (no rclpy needed)."""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from dejavu_ros.ros import handoff


def _pose(xyz, euler_deg):
    return np.asarray(xyz, float), Rotation.from_euler("xyz", euler_deg, degrees=True).as_quat()


def _same(a, b):
    np.testing.assert_allclose(a[0], b[0], atol=1e-9)
    assert abs(abs(float(np.dot(a[1], b[1]))) - 1.0) < 1e-9


def test_map_to_odom_closes_the_chain_to_the_relocalized_base():
    base_in_map = _pose([12.0, -3.0, 0.0], [0, 0, 75])
    base_in_odom = _pose([2.0, 5.0, 0.0], [0, 0, -20])  # the odometry frame is turned and shifted
    t_map_odom = handoff.map_to_odom(base_in_map, base_in_odom)
    _same(handoff.compose(t_map_odom, base_in_odom), base_in_map)


def test_initialpose_is_the_base_of_the_robot_not_the_camera():
    # an optical frame 0.3 m ahead of and 1 m above the base, looking forward (z forward, x right, y down)
    camera_in_base = (np.array([0.3, 0.0, 1.0]), Rotation.from_euler("xyz", [-90, 0, -90], degrees=True).as_quat())
    base_in_map = _pose([40.0, 7.0, 0.0], [0, 0, 30])
    camera_in_map = handoff.compose(base_in_map, camera_in_base)
    _same(handoff.base_pose(camera_in_map, handoff.inverse(camera_in_base)), base_in_map)


def test_a_relocalize_request_ends_at_the_first_trusted_frame_or_after_its_frames():
    class R:
        def __init__(self, ok):
            self.relocalized = ok
    request = handoff.RelocalizeRequest(frames=3)
    request.offer(R(False))
    assert not request.done.is_set()
    request.offer(R(True))
    assert request.done.is_set() and request.result.relocalized and request.tried == 2
    tired = handoff.RelocalizeRequest(frames=2)
    tired.offer(R(False))
    tired.offer(R(False))
    assert tired.done.is_set() and tired.result is None
