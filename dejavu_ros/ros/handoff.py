"""The hand-off to the navigation stack, as plain math (no rclpy): what AMCL / nav2 / rtabmap take.

* ``/initialpose`` (``geometry_msgs/PoseWithCovarianceStamped``) is the *robot base's* pose in the
  map frame, so the relocalized camera pose is moved to the base with the camera's extrinsic:
  T_map_base = T_map_camera · T_camera_base.
* ``map → odom`` (AMCL style) is the correction that makes the odometry chain land on the
  relocalized pose: T_map_odom = T_map_base · T_odom_base⁻¹, with T_odom_base the odometry at the
  image's stamp. The camera's extrinsic comes from ``/tf_static`` (:mod:`dejavu_ros.io.extrinsics`,
  as ``build-map --extrinsic-from-tf`` reads it): no tf2 library is needed.
* ``~/relocalize`` asks for a global relocalization: forget the recent frames (the robot may have
  been carried), then answer with the first trusted pose within a number of frames.

Transforms are (translation (3,), quaternion x y z w (4,)) pairs.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

Transform = tuple[np.ndarray, np.ndarray]


def compose(a: Transform, b: Transform) -> Transform:
    """a · b (first b, then a), e.g. T_map_camera · T_camera_base = T_map_base."""
    ra = Rotation.from_quat(a[1])
    return np.asarray(a[0], np.float64) + ra.apply(b[0]), (ra * Rotation.from_quat(b[1])).as_quat()


def inverse(t: Transform) -> Transform:
    r = Rotation.from_quat(t[1]).inv()
    return -r.apply(t[0]), r.as_quat()


def base_pose(camera_in_map: Transform, base_in_camera: Transform) -> Transform:
    """T_map_base from the camera's pose and T_camera_base (the inverse of the camera's extrinsic).

    The covariance stays as it is: the extrinsic is rigid, and the position uncertainty of a
    relocalization (a keyframe spacing or more) dwarfs the lever arm of a camera on a robot.
    """
    return compose(camera_in_map, base_in_camera)


def map_to_odom(base_in_map: Transform, base_in_odom: Transform) -> Transform:
    """T_map_odom such that T_map_odom · T_odom_base = T_map_base."""
    return compose(base_in_map, inverse(base_in_odom))


@dataclass
class RelocalizeRequest:
    """A pending ``~/relocalize`` call: done when a frame is relocalized or ``frames`` were tried."""

    frames: int
    tried: int = 0
    result: object = None  # the relocalized result, when one came

    def __post_init__(self) -> None:
        self.done = threading.Event()

    def offer(self, result) -> None:
        """Called by the worker with every processed frame's result."""
        self.tried += 1
        if getattr(result, "relocalized", False):
            self.result = result
            self.done.set()
        elif self.tried >= self.frames:
            self.done.set()
