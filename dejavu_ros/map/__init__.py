"""Keyframe map: the SQLite keyframe store and keyframe selection.

``from dejavu_ros.map import KeyframeMap, Keyframe``; selection lives in
:mod:`dejavu_ros.map.selection` (it imports scipy, which config loading should not pay for).
"""
from .errors import (InvalidKeyframeError, KeyframeNotFoundError, MapError, MapMismatchError,
                     MapMismatchWarning)
from .keyframe import Keyframe
from .store import KeyframeMap
from .tables import SCHEMA_VERSION

__all__ = ["InvalidKeyframeError", "Keyframe", "KeyframeMap", "KeyframeNotFoundError", "MapError",
           "MapMismatchError", "MapMismatchWarning", "SCHEMA_VERSION"]
