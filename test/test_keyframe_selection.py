"""Keyframe selection rules: distance, angle, interval without pose, CX novelty, first frame."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from dejavu_ros.map.config import KeyframeConfig
from dejavu_ros.map.errors import InvalidKeyframeError
from dejavu_ros.map.selection import KeyframeSelector

IDENTITY = np.array([0.0, 0.0, 0.0, 1.0])


def yaw(deg: float) -> np.ndarray:
    return Rotation.from_euler("z", deg, degrees=True).as_quat()


def selector(**kw) -> KeyframeSelector:
    return KeyframeSelector(KeyframeConfig(**kw))


def test_first_frame_is_always_a_keyframe():
    for position in (None, np.zeros(3)):
        assert selector().should_add(100.0, position, None) == (True, "first")


def test_distance_rule_measures_from_the_last_keyframe():
    sel = selector(min_distance_m=2.0, min_angle_deg=0.0, max_interval_s=0.0)
    sel.should_add(0.0, np.zeros(3), IDENTITY)
    decisions = [sel.should_add(t, np.array([x, 0.0, 0.0]), IDENTITY)[0]
                 for t, x in enumerate([0.5, 1.0, 1.99, 2.0, 3.0, 3.9, 4.1], start=1)]
    assert decisions == [False, False, False, True, False, False, True]
    assert sel.should_add(20.0, np.array([4.1, 0.0, 2.5]), IDENTITY) == (True, "distance")
    assert sel.count == 4


def test_angle_rule_uses_the_rotation_between_orientations():
    sel = selector(min_distance_m=2.0, min_angle_deg=15.0)
    sel.should_add(0.0, np.zeros(3), yaw(170))
    assert sel.should_add(1.0, np.zeros(3), yaw(180))[0] is False
    assert sel.should_add(2.0, np.zeros(3), yaw(-176))[0] is False  # 14°
    # 170° -> -174° is a 16° turn through ±180°, not 344°
    assert sel.should_add(3.0, np.zeros(3), yaw(-174)) == (True, "angle")
    tilt = Rotation.from_euler("z", -174, degrees=True) * Rotation.from_euler("x", 14, degrees=True)
    assert sel.should_add(4.0, np.zeros(3), tilt.as_quat())[0] is False
    assert sel.should_add(5.0, np.zeros(3), -yaw(-174))[0] is False  # q and -q are the same rotation
    assert sel.should_add(6.0, np.zeros(3), tilt.as_quat() * (1 + 5e-4))[0] is False


def test_a_parked_robot_adds_no_keyframes_but_a_poseless_one_does_after_the_interval():
    sel = selector(max_interval_s=5.0)
    sel.should_add(0.0, np.zeros(3), IDENTITY)
    assert not any(sel.should_add(t, np.zeros(3), IDENTITY)[0] for t in range(1, 60))
    assert sel.should_add(60.0, None, None) == (True, "interval")
    assert sel.should_add(64.9, None, None)[0] is False
    assert sel.should_add(65.0, None, None) == (True, "interval")
    assert selector(max_interval_s=0.0).should_add(0, None)[0] is True
    never = selector(max_interval_s=0.0)
    never.should_add(0.0, None)
    assert never.should_add(1e4, None)[0] is False


def test_pose_comparison_uses_the_last_keyframe_that_had_a_pose():
    sel = selector(min_distance_m=2.0, max_interval_s=1.0)
    assert sel.should_add(0.0, None) == (True, "first")
    assert sel.should_add(0.5, np.zeros(3), IDENTITY) == (True, "first_pose")
    assert sel.should_add(2.0, None) == (True, "interval")
    assert sel.should_add(2.1, np.array([1.0, 0.0, 0.0]), IDENTITY)[0] is False


def test_novelty_rule_only_when_enabled():
    off = selector()
    off.should_add(0.0, np.zeros(3), IDENTITY)
    assert off.should_add(1.0, np.zeros(3), IDENTITY, novelty_cx=0.01)[0] is False
    on = selector(novelty_cx=0.3)
    on.should_add(0.0, np.zeros(3), IDENTITY)
    assert on.should_add(1.0, np.zeros(3), IDENTITY, novelty_cx=0.35)[0] is False
    assert on.should_add(2.0, np.zeros(3), IDENTITY, novelty_cx=None)[0] is False
    assert on.should_add(3.0, np.zeros(3), IDENTITY, novelty_cx=0.29) == (True, "novelty")


def test_time_jump_and_reset_restart_selection():
    sel = selector()
    sel.should_add(100.0, np.zeros(3), IDENTITY)
    assert sel.should_add(5.0, np.zeros(3), IDENTITY) == (True, "time_jump")
    sel.reset()
    assert sel.should_add(6.0, np.zeros(3), IDENTITY) == (True, "first")


def test_bad_poses_are_refused_naming_the_field():
    sel = selector()
    with pytest.raises(InvalidKeyframeError, match="position"):
        sel.should_add(0.0, np.array([0.0, np.nan, 0.0]), IDENTITY)
    with pytest.raises(InvalidKeyframeError, match="orientation"):
        sel.should_add(0.0, np.zeros(3), np.array([0.0, 0.0, 0.0, 2.0]))
    with pytest.raises(InvalidKeyframeError, match="stamp"):
        sel.should_add(float("inf"), np.zeros(3), IDENTITY)
    assert sel.count == 0
