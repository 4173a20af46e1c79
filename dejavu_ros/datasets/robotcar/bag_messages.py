"""rosbags messages the RobotCar converter writes (geometry from 4x4 transforms)."""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from ...io.typestore import header, msg_class


def _vector(cls_name: str, xyz) -> Any:
    x, y, z = (float(v) for v in xyz)
    return msg_class(cls_name)(x=x, y=y, z=z)


def _quaternion(rotation: np.ndarray) -> Any:
    x, y, z, w = Rotation.from_matrix(rotation).as_quat()
    return msg_class("geometry_msgs/msg/Quaternion")(x=x, y=y, z=z, w=w)


def pose(transform: np.ndarray) -> Any:
    return msg_class("geometry_msgs/msg/Pose")(position=_vector("geometry_msgs/msg/Point", transform[:3, 3]),
                                               orientation=_quaternion(transform[:3, :3]))


def pose_stamped(stamp_ns: int, frame_id: str, transform: np.ndarray) -> Any:
    return msg_class("geometry_msgs/msg/PoseStamped")(header=header(stamp_ns, frame_id), pose=pose(transform))


def odometry(stamp_ns: int, frame_id: str, child_frame_id: str, transform: np.ndarray,
             linear_velocity_child=(0.0, 0.0, 0.0)) -> Any:
    """Odometry with unknown (zero) covariances; twist in the child frame as REP 105 says."""
    vector = "geometry_msgs/msg/Vector3"
    twist = msg_class("geometry_msgs/msg/Twist")(linear=_vector(vector, linear_velocity_child),
                                                 angular=_vector(vector, (0, 0, 0)))
    return msg_class("nav_msgs/msg/Odometry")(
        header=header(stamp_ns, frame_id), child_frame_id=child_frame_id,
        pose=msg_class("geometry_msgs/msg/PoseWithCovariance")(pose=pose(transform), covariance=np.zeros(36)),
        twist=msg_class("geometry_msgs/msg/TwistWithCovariance")(twist=twist, covariance=np.zeros(36)))


def nav_sat_fix(stamp_ns: int, frame_id: str, latitude: float, longitude: float, altitude: float,
                good: bool) -> Any:
    NavSatStatus = msg_class("sensor_msgs/msg/NavSatStatus")
    status = NavSatStatus(status=NavSatStatus.STATUS_FIX if good else NavSatStatus.STATUS_NO_FIX,
                          service=NavSatStatus.SERVICE_GPS)
    NavSatFix = msg_class("sensor_msgs/msg/NavSatFix")
    return NavSatFix(header=header(stamp_ns, frame_id), status=status, latitude=latitude, longitude=longitude,
                     altitude=altitude, position_covariance=np.zeros(9),
                     position_covariance_type=NavSatFix.COVARIANCE_TYPE_UNKNOWN)


def transform_stamped(stamp_ns: int, parent: str, child: str, transform: np.ndarray) -> Any:
    translation = _vector("geometry_msgs/msg/Vector3", transform[:3, 3])
    rotation = _quaternion(transform[:3, :3])
    tf = msg_class("geometry_msgs/msg/Transform")(translation=translation, rotation=rotation)
    stamped = msg_class("geometry_msgs/msg/TransformStamped")
    return stamped(header=header(stamp_ns, parent), child_frame_id=child, transform=tf)


def tf_message(transforms: list[Any]) -> Any:
    return msg_class("tf2_msgs/msg/TFMessage")(transforms=transforms)
