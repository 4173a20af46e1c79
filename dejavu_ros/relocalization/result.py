"""What one call of the engine returns; the node and the offline replay publish from this."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Candidate:
    """A keyframe the query may show, best first."""

    keyframe_id: int
    rank: int  # 0 = best
    shortlist_score: float  # global-descriptor cosine
    cx_score: float  # contextual similarity in [0, 1]
    position: np.ndarray  # (3,) keyframe camera position, map frame
    orientation: np.ndarray  # (4,) x, y, z, w
    inliers: int = 0  # verified inliers (0 when not verified)


@dataclass
class Verification:
    """Sparse matching + RANSAC between the query and one keyframe."""

    keyframe_id: int
    query_xy: np.ndarray  # (N, 2) inlier pixel positions in the query image
    map_xy: np.ndarray  # (N, 2) the matching positions in the keyframe image
    scores: np.ndarray  # (N,) match confidence in [0, 1]
    num_matches: int  # matches that entered RANSAC
    inlier_ratio: float
    model: str  # "essential" (intrinsics known) or "fundamental"
    matrix: np.ndarray  # (3, 3) E or F
    rotation: np.ndarray | None = None  # (3, 3) query camera w.r.t. keyframe camera (from E)
    translation_dir: np.ndarray | None = None  # (3,) unit vector (from E)
    accepted: bool = False

    @property
    def num_inliers(self) -> int:
        return int(len(self.query_xy))


@dataclass
class PoseEstimate:
    """Camera pose of the query in the map frame."""

    position: np.ndarray  # (3,)
    orientation: np.ndarray  # (4,) x, y, z, w
    covariance: np.ndarray  # (6, 6) x y z roll pitch yaw
    source: str  # "pnp" (metric, from 3-D points) or "keyframe" (pose of the verified keyframe)
    inliers: int = 0


@dataclass
class RelocalizationResult:
    stamp: float
    image_size: tuple[int, int]  # (width, height) of the query
    status: str  # "relocalized", "not_verified", "map_empty", "error"
    candidates: list[Candidate] = field(default_factory=list)
    verification: Verification | None = None
    pose: PoseEstimate | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    message: str = ""

    @property
    def relocalized(self) -> bool:
        return self.status == "relocalized"
