"""The one rosbags typestore used for every bag this package writes or reads without embedded types.

ROS 2 Humble's definitions are used: the message types this package touches (sensor_msgs,
geometry_msgs, nav_msgs, tf2_msgs, std_msgs, visualization_msgs, diagnostic_msgs) hash
identically in Humble and Jazzy, so bags written with them play on either distribution.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from rosbags.typesys import Stores, get_typestore

STORE = Stores.ROS2_HUMBLE


@lru_cache(maxsize=1)
def typestore():
    """The shared :class:`rosbags.typesys.store.Typestore` (cached)."""
    return get_typestore(STORE)


def msg_class(msgtype: str) -> Any:
    """The rosbags class of a message type, e.g. ``msg_class("sensor_msgs/msg/Image")``."""
    return typestore().types[msgtype]


def stamp_to_ns(stamp: Any) -> int:
    """builtin_interfaces/Time (rclpy or rosbags) -> integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_stamp(ns: int, time_cls: Any = None) -> Any:
    """Integer nanoseconds -> builtin_interfaces/Time of ``time_cls`` (rosbags class by default)."""
    time_cls = time_cls or msg_class("builtin_interfaces/msg/Time")
    sec, nanosec = divmod(int(ns), 1_000_000_000)
    return time_cls(sec=sec, nanosec=nanosec)


def header(ns: int, frame_id: str) -> Any:
    """A rosbags std_msgs/Header."""
    return msg_class("std_msgs/msg/Header")(stamp=ns_to_stamp(ns), frame_id=frame_id)
