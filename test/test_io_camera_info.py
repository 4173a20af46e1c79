"""CameraInfo <-> CameraIntrinsics."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from dejavu_ros.geometry import CameraIntrinsics
from dejavu_ros.io.camera_info import camera_info_to_intrinsics, intrinsics_to_camera_info
from dejavu_ros.io.errors import CameraInfoError
from dejavu_ros.io.typestore import header, typestore


def rclpy_like(k, d=(0.0,) * 5, model="plumb_bob", width=640, height=480):
    return SimpleNamespace(header=SimpleNamespace(frame_id="cam_optical"), width=width, height=height,
                           distortion_model=model, k=list(k), d=list(d))


K = [500.0, 0.0, 320.5, 0.0, 510.0, 240.25, 0.0, 0.0, 1.0]


def test_rclpy_style_message():
    intr = camera_info_to_intrinsics(rclpy_like(K, d=[0.1, -0.05, 0.001, 0.002, 0.01]))
    np.testing.assert_array_equal(intr.k, np.reshape(K, (3, 3)))
    assert (intr.width, intr.height, intr.frame_id) == (640, 480, "cam_optical")
    np.testing.assert_array_equal(intr.distortion, [0.1, -0.05, 0.001, 0.002, 0.01])


def test_zero_distortion_means_rectified():
    assert camera_info_to_intrinsics(rclpy_like(K)).distortion is None
    assert camera_info_to_intrinsics(rclpy_like(K, d=[], model="")).distortion is None


def test_uncalibrated_camera_gives_none():
    assert camera_info_to_intrinsics(rclpy_like([0.0] * 9)) is None


@pytest.mark.parametrize("msg,match", [
    (rclpy_like(K[:8]), r"topic '/cam/camera_info' field 'k': expected 9 values, got 8"),
    (rclpy_like([float("nan")] + K[1:]), r"field 'k' contains NaN"),
    (rclpy_like([-5.0] + K[1:]), r"focal lengths must be positive"),
    (rclpy_like(K, width=0), r"'width'/'height' must be positive, got 0x480"),
    (rclpy_like(K, d=[0.1, 0.0, 0.0, 0.0], model="equidistant"), r"'equidistant' with non-zero D"),
    (rclpy_like(K, d=[float("inf")] * 5), r"field 'd' contains NaN/Inf"),
])
def test_malformed_camera_info(msg, match):
    with pytest.raises(CameraInfoError, match=match):
        camera_info_to_intrinsics(msg, topic="/cam/camera_info")


def test_rosbags_round_trip_through_cdr():
    intr = CameraIntrinsics.from_fxfycxcy(964.828979, 964.828979, 643.788025, 484.407990, 1280, 960)
    msg = intrinsics_to_camera_info(intr, header(7, "stereo_centre_optical"))
    raw = typestore().serialize_cdr(msg, "sensor_msgs/msg/CameraInfo")
    back = typestore().deserialize_cdr(raw, "sensor_msgs/msg/CameraInfo")
    assert back.distortion_model == "plumb_bob" and list(back.d) == [0.0] * 5
    np.testing.assert_array_equal(back.p.reshape(3, 4)[:, :3], intr.k)
    again = camera_info_to_intrinsics(back)
    np.testing.assert_array_equal(again.k, intr.k)
    assert (again.width, again.height, again.frame_id) == (1280, 960, "stereo_centre_optical")
    unknown = intrinsics_to_camera_info(intr, header(7, "x"), distortion_known=False)
    assert unknown.distortion_model == "" and len(unknown.d) == 0
