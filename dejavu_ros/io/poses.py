"""Poses out of messages, and a time-indexed track to look a pose up at an image's stamp.

Supported messages: nav_msgs/Odometry, geometry_msgs/PoseStamped and
geometry_msgs/PoseWithCovarianceStamped (rclpy or rosbags objects). Quaternions are x, y, z, w
throughout, as in ROS and scipy.
"""
from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from scipy.spatial.transform import Rotation

from ..geometry import pose_problem
from .errors import PoseMessageError
from .typestore import stamp_to_ns

log = logging.getLogger(__name__)

POSE_TYPES = ("nav_msgs/msg/Odometry", "geometry_msgs/msg/PoseStamped",
              "geometry_msgs/msg/PoseWithCovarianceStamped")
LOOKUP_METHODS = ("linear", "nearest")


@dataclass
class PoseSample:
    stamp_ns: int
    position: np.ndarray  # (3,) float64
    orientation: np.ndarray  # (4,) x, y, z, w
    covariance: np.ndarray | None = None  # (6, 6) x y z roll pitch yaw; None when not given / all zero
    frame_id: str = ""
    child_frame_id: str = ""


def pose_from_message(msg: Any, *, topic: str = "", stamp_ns: int | None = None) -> PoseSample:
    """Odometry / PoseStamped / PoseWithCovarianceStamped -> :class:`PoseSample`.

    ``stamp_ns`` overrides the header stamp (e.g. the bag's log time when the header is unset).
    The values are not checked here; :meth:`PoseTrack.add` rejects invalid ones.
    """
    pose_field = getattr(msg, "pose", None)
    if pose_field is None or not hasattr(getattr(msg, "header", None), "stamp"):
        raise PoseMessageError(f"topic '{topic}': {type(msg).__name__} is not a pose message "
                               f"(supported: {', '.join(POSE_TYPES)})")
    covariance = None
    if hasattr(pose_field, "pose"):  # Odometry / PoseWithCovarianceStamped: PoseWithCovariance
        cov = np.asarray(pose_field.covariance, dtype=np.float64).reshape(-1)
        if cov.size == 36 and np.any(cov):
            covariance = cov.reshape(6, 6).copy()
        pose_field = pose_field.pose
    p, q = pose_field.position, pose_field.orientation
    stamp = stamp_to_ns(msg.header.stamp) if stamp_ns is None else int(stamp_ns)
    return PoseSample(stamp_ns=stamp, position=np.array([p.x, p.y, p.z], dtype=np.float64),
                      orientation=np.array([q.x, q.y, q.z, q.w], dtype=np.float64), covariance=covariance,
                      frame_id=str(msg.header.frame_id),
                      child_frame_id=str(getattr(msg, "child_frame_id", "")))


def sample_problem(sample: PoseSample) -> str | None:
    """Why a pose sample is unusable (see :func:`dejavu_ros.geometry.pose_problem`), or None."""
    return pose_problem(sample.position, sample.orientation, sample.covariance)


def interpolate(a: PoseSample, b: PoseSample, stamp_ns: int) -> PoseSample:
    """Linear position, spherical-linear orientation between two samples (a.stamp <= stamp <= b.stamp)."""
    span = b.stamp_ns - a.stamp_ns
    alpha = 0.0 if span <= 0 else (stamp_ns - a.stamp_ns) / span
    ra, rb = Rotation.from_quat(a.orientation), Rotation.from_quat(b.orientation)
    rot = ra * Rotation.from_rotvec(alpha * (ra.inv() * rb).as_rotvec())
    nearer = a if alpha <= 0.5 else b
    return PoseSample(stamp_ns=int(stamp_ns), position=(1 - alpha) * a.position + alpha * b.position,
                      orientation=rot.as_quat(), covariance=nearer.covariance, frame_id=a.frame_id,
                      child_frame_id=a.child_frame_id)


class PoseTrack:
    """Poses sorted by stamp, looked up by stamp with a tolerance.

    ``lookup(t, tol, "linear")`` interpolates between the poses just before and after ``t`` when
    both are within ``tol`` of it, else returns the nearest pose within ``tol``; "nearest" only
    does the latter. Invalid poses (NaN/Inf, non-unit quaternion) are rejected with a warning and
    counted in :attr:`rejected`. ``max_samples`` bounds memory for a live stream (oldest dropped).
    """

    def __init__(self, *, max_samples: int | None = None, name: str = ""):
        self.max_samples = max_samples
        self.name = name
        self.rejected = 0
        self._stamps: list[int] = []
        self._samples: list[PoseSample] = []

    def __len__(self) -> int:
        return len(self._samples)

    @property
    def first_stamp_ns(self) -> int | None:
        return self._stamps[0] if self._stamps else None

    @property
    def last_stamp_ns(self) -> int | None:
        return self._stamps[-1] if self._stamps else None

    def add(self, sample: PoseSample) -> bool:
        problem = sample_problem(sample)
        if problem is not None:
            self.rejected += 1
            if self.rejected <= 5 or self.rejected % 1000 == 0:
                log.warning("pose track %s: rejected pose at %d ns: %s (%d rejected so far)",
                            self.name or "?", sample.stamp_ns, problem, self.rejected)
            return False
        sample.orientation = sample.orientation / np.linalg.norm(sample.orientation)
        index = bisect.bisect_right(self._stamps, sample.stamp_ns)
        self._stamps.insert(index, sample.stamp_ns)
        self._samples.insert(index, sample)
        if self.max_samples is not None and len(self._samples) > self.max_samples:
            drop = len(self._samples) - self.max_samples
            del self._stamps[:drop], self._samples[:drop]
        return True

    def extend(self, samples: Iterable[PoseSample]) -> "PoseTrack":
        for sample in samples:
            self.add(sample)
        return self

    def lookup(self, stamp_ns: int, tolerance_ns: int, method: str = "linear") -> PoseSample | None:
        if method not in LOOKUP_METHODS:
            raise ValueError(f"pose lookup method {method!r} is not one of {list(LOOKUP_METHODS)}")
        if not self._stamps:
            return None
        index = bisect.bisect_left(self._stamps, stamp_ns)
        after = self._samples[index] if index < len(self._samples) else None
        before = self._samples[index - 1] if index > 0 else None
        if after is not None and after.stamp_ns == stamp_ns:
            return after
        if (method == "linear" and before is not None and after is not None
                and stamp_ns - before.stamp_ns <= tolerance_ns and after.stamp_ns - stamp_ns <= tolerance_ns):
            return interpolate(before, after, stamp_ns)
        candidates = [s for s in (before, after)
                      if s is not None and abs(s.stamp_ns - stamp_ns) <= tolerance_ns]
        return min(candidates, key=lambda s: abs(s.stamp_ns - stamp_ns)) if candidates else None

    def is_pending(self, stamp_ns: int, tolerance_ns: int) -> bool:
        """True while a later pose could still change the answer for ``stamp_ns`` (live streams)."""
        return self.last_stamp_ns is None or self.last_stamp_ns < stamp_ns + tolerance_ns

    def prune(self, before_ns: int) -> None:
        """Forget poses older than ``before_ns`` (keeps one so lookups just after can interpolate)."""
        index = max(0, bisect.bisect_left(self._stamps, before_ns) - 1)
        del self._stamps[:index], self._samples[:index]


def read_pose_track(bag: str | Path | Any, topic: str, **track_kwargs: Any) -> PoseTrack:
    """All poses of ``topic`` in a bag (path or open :class:`BagReader`) as a :class:`PoseTrack`.

    A damaged bag raises :class:`BagDamagedError` after the readable poses were read; use
    :func:`iter_poses` to keep them.
    """
    track = PoseTrack(name=topic, **track_kwargs)
    track.extend(iter_poses(bag, topic))
    return track


def iter_poses(bag: str | Path | Any, topic: str) -> Iterable[PoseSample]:
    from .bag_reader import BagReader

    if isinstance(bag, BagReader):
        for m in bag.messages([topic]):
            yield pose_from_message(m.msg, topic=topic, stamp_ns=m.stamp_ns)
        return
    with BagReader(bag) as reader:
        yield from iter_poses(reader, topic)
