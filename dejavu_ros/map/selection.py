"""Which frames become keyframes while building a map.

A keyframe is added when the camera moved or turned enough since the last keyframe with a pose,
when the view stopped resembling the last keyframe (optional CX novelty rule), or, while no pose
is known, when enough time passed. A parked robot therefore adds no keyframes.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.spatial.transform import Rotation

from .config import KeyframeConfig
from .errors import InvalidKeyframeError
from .validation import unit_quaternion


class KeyframeSelector:
    """Stateful keyframe decision; :meth:`should_add` records the frame when it answers yes."""

    def __init__(self, cfg: KeyframeConfig | None = None):
        self.cfg = cfg or KeyframeConfig()
        self.reset()

    def reset(self) -> None:
        """Forget the last keyframe (the next frame becomes a keyframe)."""
        self.last_stamp: float | None = None
        self.last_position: np.ndarray | None = None
        self._last_rotation: Rotation | None = None
        self.count = 0

    def should_add(self, stamp: float, position=None, orientation=None,
                   novelty_cx: float | None = None) -> tuple[bool, str]:
        """Decide for one frame; return ``(add, reason)``.

        ``position`` (3,) and ``orientation`` (x, y, z, w) are the camera pose in the map frame,
        None when unknown (an orientation without a position is ignored). ``novelty_cx`` is the
        CX between this frame and the last keyframe, None when not computed. Reasons for adding:
        ``first``, ``time_jump`` (stamp went backwards, e.g. a replayed bag restarted),
        ``first_pose``, ``distance``, ``angle``, ``novelty``, ``interval``; ``no_change`` otherwise.
        """
        stamp = float(stamp)
        if not math.isfinite(stamp):
            raise InvalidKeyframeError(f"keyframe selection: stamp is {stamp}")
        pos = rot = None
        if position is not None:
            pos = np.asarray(position, dtype=np.float64)
            if pos.shape != (3,) or not np.all(np.isfinite(pos)):
                raise InvalidKeyframeError(f"keyframe selection: field 'position' must be 3 finite "
                                           f"values, got {position!r}")
            if orientation is not None:
                rot = Rotation.from_quat(unit_quaternion(orientation))
        reason = self._reason(stamp, pos, rot, novelty_cx)
        if reason is None:
            return False, "no_change"
        self.last_stamp = stamp
        if pos is not None:
            self.last_position, self._last_rotation = pos, rot
        self.count += 1
        return True, reason

    def _reason(self, stamp: float, pos: np.ndarray | None, rot: Rotation | None,
                novelty_cx: float | None) -> str | None:
        cfg = self.cfg
        if self.last_stamp is None:
            return "first"
        if stamp < self.last_stamp:
            self.reset()
            return "time_jump"
        if pos is not None:
            if self.last_position is None:
                return "first_pose"
            if cfg.min_distance_m > 0 and np.linalg.norm(pos - self.last_position) >= cfg.min_distance_m:
                return "distance"
            if cfg.min_angle_deg > 0 and rot is not None and self._last_rotation is not None:
                turned = math.degrees((self._last_rotation.inv() * rot).magnitude())
                if turned >= cfg.min_angle_deg:
                    return "angle"
        if cfg.novelty_cx > 0 and novelty_cx is not None and float(novelty_cx) < cfg.novelty_cx:
            return "novelty"
        if pos is None and cfg.max_interval_s > 0 and stamp - self.last_stamp >= cfg.max_interval_s:
            return "interval"
        return None
