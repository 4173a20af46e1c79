"""The error of the RobotCar readers."""
from __future__ import annotations

from ...errors import DejavuError


class RobotCarFormatError(DejavuError, ValueError):
    """A RobotCar / RobotCar Seasons file or folder is missing or not in the expected format."""
