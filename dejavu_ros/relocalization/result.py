"""What one call of the engine returns; the node and the offline replay publish from this.

Frames and units: positions in metres and orientations as quaternions (x, y, z, w) of the *camera*
(optical frame: z forward, x right, y down) in the map frame; pixel coordinates in the pixels of the
original images (the query as it arrived, the keyframe as it was mapped), whatever size the
network saw them at; confidences are calibrated probabilities in [0, 1].
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from ..matching.verification import Verification


class Status(str, Enum):
    """Outcome of one frame (a ``str`` enum: it compares and serialises as its value)."""

    RELOCALIZED = "relocalized"  # a place passed the trust decision; ``pose`` is set
    NOT_VERIFIED = "not_verified"  # ranked candidates only: no place passed
    MAP_EMPTY = "map_empty"  # the map holds no keyframes

    def __str__(self) -> str:
        return self.value


class PoseSource(str, Enum):
    """How the published pose was obtained (and so what its covariance means)."""

    PNP = "pnp"  # metric 6-DoF pose from the keyframe's 3-D points (depth at mapping time)
    RELATIVE_ROTATION = "relative_rotation"  # keyframe position, orientation from the essential matrix
    KEYFRAME = "keyframe"  # the keyframe's own pose: the camera stands near it, looking the same way

    def __str__(self) -> str:
        return self.value


@dataclass
class Candidate:
    """A keyframe the query may show, best first."""

    keyframe_id: int
    rank: int  # 0 = best
    shortlist_score: float  # global-descriptor cosine similarity in [-1, 1]
    cx_score: float  # contextual similarity in [0, 1]
    position: np.ndarray  # (3,) keyframe camera position, map frame, metres
    orientation: np.ndarray  # (4,) keyframe camera orientation, map frame, x y z w
    inliers: int = 0  # RANSAC inliers of its verification (0 when it was not verified)
    confidence: float = 0.0  # calibrated probability that this keyframe shows the query's place
    # from its verified matches, else the overlap head (nan: neither; relocalization/candidates.py)
    overlap: float = float("nan")  # fraction of the query's view the keyframe shows
    scale: float = float("nan")  # how much larger the query shows things than the keyframe


@dataclass
class PoseEstimate:
    """Camera pose of the query in the map frame."""

    position: np.ndarray  # (3,) metres
    orientation: np.ndarray  # (4,) x, y, z, w
    covariance: np.ndarray  # (6, 6) over x y z roll pitch yaw (m², rad²), ROS order
    source: PoseSource
    inliers: int = 0  # inliers of the geometry it came from


@dataclass
class RelocalizationResult:
    """Everything the engine concluded about one frame.

    ``verification`` belongs to :attr:`keyframe_id` — the keyframe the debug view, the report
    and the matches show — and its matches are published only when ``status`` is relocalized.
    ``evidence`` holds, per verified keyframe id, the trust decision's features (its evidence
    against the strongest other place) and the verification statistics they came from.
    """

    stamp: float  # seconds, the image's stamp
    image_size: tuple[int, int]  # (width, height) of the query image as it arrived
    status: Status
    candidates: list[Candidate] = field(default_factory=list)  # ranked, best first
    verification: Verification | None = None
    pose: PoseEstimate | None = None  # set when relocalized
    confidence: float = 0.0  # calibrated probability that the reported place is right
    route_keyframe: int | None = None  # where the recent frames say the camera is (route localization on)
    route_support: float = 0.0  # how strongly they back that keyframe's place, in [0, 1]
    route_position: np.ndarray | None = None  # (3,) that keyframe's position, map frame
    evidence: dict[int, dict[str, float]] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)  # per stage and "total"
    message: str = ""  # why the frame was not relocalized, when it was not

    @property
    def relocalized(self) -> bool:
        return self.status == Status.RELOCALIZED

    @property
    def keyframe_id(self) -> int | None:
        """The keyframe this result is about: the verified one when there is one, else the best candidate."""
        if self.verification is not None:
            return int(self.verification.keyframe_id)
        if self.candidates:
            return int(min(self.candidates, key=lambda c: c.rank).keyframe_id)
        return None

    def candidate(self, keyframe_id: int | None) -> Candidate | None:
        return next((c for c in self.candidates if c.keyframe_id == keyframe_id), None)

    def summary(self) -> str:
        """One line for service replies and logs: the status, the keyframe the result is about (the
        verified one, else the best candidate) with its CX and inliers; why not relocalized, when it
        was not."""
        if not self.candidates:
            return f"{self.status}: no candidates {self.message}".strip()
        kf_id = self.keyframe_id
        shown = self.candidate(kf_id)
        cx = f"cx {shown.cx_score:.3f}, " if shown is not None else ""
        inliers = self.verification.num_inliers if self.verification is not None else 0
        what = "keyframe" if self.verification is not None else "best keyframe"
        line = f"{self.status}: {what} {kf_id} ({cx}{inliers} inliers)"
        return line if self.relocalized or not self.message else f"{line}: {self.message}"


@dataclass(frozen=True)
class KeyframeDecision:
    """What mapping mode did with one frame."""

    added: bool
    reason: str  # the selection rule that fired ("distance", "angle", ...), or why the frame was skipped
    keyframe_id: int | None = None  # the new keyframe's id when added
