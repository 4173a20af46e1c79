"""Recent poses kept by stamp, so each image is paired with the pose taken nearest to it: the map
pose in mapping mode, the odometry route localization and the map→odom hand-off use in localize mode.

Odometry and images arrive on separate topics at different rates; the worker looks the pose up
when it gets to the frame, by which time the pose after the image has usually arrived too.
Pure Python (no rclpy); :func:`stamped_pose` reads the ROS messages.
"""
from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass

import numpy as np

from ..io.typestore import stamp_to_ns


@dataclass(frozen=True)
class StampedPose:
    stamp_ns: int
    position: np.ndarray  # (3,)
    orientation: np.ndarray  # (4,) x, y, z, w
    covariance: np.ndarray | None  # (6, 6)
    frame_id: str = ""


class PoseBuffer:
    """Thread-safe, bounded, stamp-sorted buffer of poses."""

    def __init__(self, capacity: int = 2000):
        self._capacity = int(capacity)
        self._stamps: list[int] = []
        self._poses: list[StampedPose] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._poses)

    def add(self, pose: StampedPose) -> None:
        with self._lock:
            i = bisect.bisect_right(self._stamps, pose.stamp_ns)
            self._stamps.insert(i, pose.stamp_ns)
            self._poses.insert(i, pose)
            if len(self._poses) > self._capacity:  # forget the oldest
                del self._stamps[0], self._poses[0]

    def nearest(self, stamp_ns: int, tolerance_s: float) -> StampedPose | None:
        """The pose closest in time to ``stamp_ns``, or None when none is within ``tolerance_s``."""
        with self._lock:
            i = bisect.bisect_left(self._stamps, stamp_ns)
            best = None
            for j in (i - 1, i):
                if 0 <= j < len(self._poses):
                    if best is None or abs(self._stamps[j] - stamp_ns) < abs(best.stamp_ns - stamp_ns):
                        best = self._poses[j]
            if best is None or abs(best.stamp_ns - stamp_ns) > tolerance_s * 1e9:
                return None
            return best


def covariance_6x6(values) -> np.ndarray | None:
    """A ROS 36-element covariance as 6×6; None when it is all zeros (ROS for 'unknown')."""
    cov = np.asarray(values, dtype=np.float64).reshape(6, 6)
    return None if not np.any(cov) else cov


def stamped_pose(msg) -> StampedPose:
    """A nav_msgs/Odometry or geometry_msgs/PoseWithCovarianceStamped (both carry ``pose.pose`` and
    ``pose.covariance``) as a :class:`StampedPose` in the message's frame."""
    p, q = msg.pose.pose.position, msg.pose.pose.orientation
    return StampedPose(stamp_ns=stamp_to_ns(msg.header.stamp), position=np.array([p.x, p.y, p.z]),
                       orientation=np.array([q.x, q.y, q.z, q.w]), covariance=covariance_6x6(msg.pose.covariance),
                       frame_id=msg.header.frame_id)
