"""sensor_msgs/CameraInfo <-> :class:`dejavu_ros.geometry.CameraIntrinsics`.

K and D describe the raw (distorted) image; this module does not use P, so it is meant for the
camera_info that accompanies ``image_raw``/``image_color`` (for ``image_rect`` topics the driver
publishes D = 0 and K = P[:3, :3] of the rectified camera, which reads correctly too).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..geometry import CameraIntrinsics
from .errors import CameraInfoError
from .typestore import msg_class

#: distortion models whose D is in OpenCV's order (k1 k2 p1 p2 k3 [k4 k5 k6])
OPENCV_MODELS = ("plumb_bob", "rational_polynomial")


def _field(msg: Any, name: str) -> Any:
    """rclpy/rosbags use lower-case names; ROS 1 style objects upper-case K, D."""
    if hasattr(msg, name):
        return getattr(msg, name)
    return getattr(msg, name.upper())


def camera_info_to_intrinsics(msg: Any, *, topic: str = "") -> CameraIntrinsics | None:
    """CameraInfo -> intrinsics; None when the camera is uncalibrated (K all zero, as the spec says).

    Raises :class:`CameraInfoError` naming the field when K or the size is malformed, or when a
    non-zero D uses a model other than plumb_bob / rational_polynomial (e.g. equidistant), which
    the OpenCV pinhole functions downstream would silently misread.
    """
    where = f"topic '{topic}'" if topic else "CameraInfo"
    k = np.asarray(_field(msg, "k"), dtype=np.float64).reshape(-1)
    if k.size != 9:
        raise CameraInfoError(f"{where} field 'k': expected 9 values, got {k.size}")
    if not np.all(np.isfinite(k)):
        raise CameraInfoError(f"{where} field 'k' contains NaN/Inf: {k.tolist()}")
    if not np.any(k):
        return None
    k = k.reshape(3, 3)
    if k[0, 0] <= 0 or k[1, 1] <= 0:
        raise CameraInfoError(f"{where} field 'k': focal lengths must be positive, got fx={k[0, 0]}, "
                              f"fy={k[1, 1]}")
    width, height = int(msg.width), int(msg.height)
    if width <= 0 or height <= 0:
        raise CameraInfoError(f"{where} fields 'width'/'height' must be positive, got {width}x{height}")
    d = np.asarray(_field(msg, "d"), dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(d)):
        raise CameraInfoError(f"{where} field 'd' contains NaN/Inf: {d.tolist()}")
    model = str(getattr(msg, "distortion_model", "") or "")
    distortion = None
    if d.size and np.any(d):
        if model not in OPENCV_MODELS:
            raise CameraInfoError(f"{where} field 'distortion_model': {model!r} with non-zero D is not "
                                  f"supported (expected one of {list(OPENCV_MODELS)}); rectify the images")
        distortion = d.copy()
    frame_id = str(getattr(getattr(msg, "header", None), "frame_id", "") or "")
    return CameraIntrinsics(k=k, width=width, height=height, distortion=distortion, frame_id=frame_id)


def intrinsics_to_camera_info(intr: CameraIntrinsics, header: Any, *, distortion_known: bool = True) -> Any:
    """CameraIntrinsics -> rosbags sensor_msgs/CameraInfo.

    plumb_bob with zeros when the image is rectified (``distortion`` None). With
    ``distortion_known=False`` (a lens model CameraInfo cannot express, such as RobotCar's
    lookup tables) the model is left empty and D has no coefficients, which readers take as
    "no distortion information" rather than "no distortion".
    """
    d = np.zeros(5) if intr.distortion is None else np.asarray(intr.distortion, np.float64)
    if d.size not in (5, 8):
        raise CameraInfoError(f"distortion has {d.size} coefficients; CameraInfo needs 5 (plumb_bob) or 8")
    model = "plumb_bob" if d.size == 5 else "rational_polynomial"
    if not distortion_known:
        model, d = "", np.zeros(0)
    k = np.asarray(intr.k, np.float64)
    p = np.zeros((3, 4))
    p[:3, :3] = k
    roi_cls = msg_class("sensor_msgs/msg/RegionOfInterest")
    info_cls = msg_class("sensor_msgs/msg/CameraInfo")
    return info_cls(header=header, height=int(intr.height), width=int(intr.width), distortion_model=model,
                    d=d.copy(), k=k.reshape(-1).copy(), r=np.eye(3).reshape(-1), p=p.reshape(-1),
                    binning_x=0, binning_y=0,
                    roi=roi_cls(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
