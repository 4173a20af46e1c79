"""Errors of the map stage; every message names the map file or the keyframe field at fault."""
from __future__ import annotations

from ..errors import DejavuError


class MapError(DejavuError):
    """A map file is missing, damaged, not a map, or used in a way its open mode forbids."""


class MapMismatchError(MapError):
    """The map was built for another model, descriptor size or schema version."""


class InvalidKeyframeError(MapError, ValueError):
    """A keyframe handed to :meth:`KeyframeMap.append` has a bad field (NaN pose, wrong shape...)."""


class KeyframeNotFoundError(MapError, KeyError):
    """No keyframe with the requested id."""

    def __str__(self) -> str:  # KeyError would wrap the message in quotes
        return str(self.args[0]) if self.args else ""


class MapMismatchWarning(UserWarning):
    """A map built with another model was opened anyway (``allow_model_mismatch=True``)."""
