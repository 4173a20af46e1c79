"""The published matches and pose of a trusted keyframe (``matching.refine``).

The trust decision is calibrated on one verification (``matching.method`` and ``matching.keypoints``,
Shi-Tomasi corners and DVF descriptors by default), and it stays the only thing that decides whether
a place is published. Other matches are better at the pose: the keypoint head's DVF matches and SIFT
together find about as many correct night matches as SIFT or more, where the Shi-Tomasi corners are
lamps, and far more inliers by day (benchmarks/bench_matching_webcams.py). But their confident matches
on repeated façades fooled the trust evidence (README, *Trust*). So they join only after the place is
trusted: one more RANSAC over the verification's inliers, the head's matches and the SIFT matches.
The result replaces the verification's matches and relative pose only when it keeps most of the
verification's inliers: a refined fit must agree with the geometry the trusted verification found,
so SIFT cannot pull the pose elsewhere.
"""
from __future__ import annotations

from dataclasses import dataclass

from .config import MatchingConfig
from .matches import Matches
from .verification import GeometricVerification, verify

#: the refined fit is kept when at least this fraction of the trusted verification's inliers stay inliers
MIN_AGREEMENT = 0.5


def refine_uses_head(cfg: MatchingConfig) -> bool:
    return "dvf_head" in cfg.refine


def refine_uses_sift(cfg: MatchingConfig) -> bool:
    return "sift" in cfg.refine


@dataclass
class Refinement:
    """The refined fit, and how much of the trusted verification it kept (``accepted``: it is used)."""

    geometry: GeometricVerification
    agreement: float  # fraction of the trusted verification's inliers that are inliers of the refined fit
    accepted: bool
    reason: str = ""

    def stats(self) -> dict[str, float]:
        """What the published verification records about its refinement."""
        return {"refined": float(self.accepted), "refine_agreement": self.agreement,
                "refine_inliers": float(self.geometry.num_inliers)}


def refine_verification(trusted: GeometricVerification, extra: list[Matches], cfg: MatchingConfig | None = None,
                        K_query=None, K_map=None, query_size: tuple[int, int] | None = None) -> Refinement:
    """RANSAC over ``trusted``'s inliers and the ``extra`` match sets (same pixels and cameras as
    ``trusted``'s matches); accepted when the fit passes :func:`verify`'s checks and keeps ≥
    :data:`MIN_AGREEMENT` of ``trusted``'s inliers. ``map_idx`` of ``extra`` must not collide with the
    trusted corners' (offset them) when the pose is computed from the keyframe's 3-D points."""
    cfg = cfg or MatchingConfig()
    base = trusted.inliers
    geo = verify(Matches.concat([base, *extra]), cfg, K_query=K_query, K_map=K_map, query_size=query_size)
    agreement = float(geo.inlier_mask[:len(base)].mean()) if len(base) else 0.0
    if not geo.accepted:
        return Refinement(geo, agreement, False, f"refined fit not accepted: {geo.reason}")
    if agreement < MIN_AGREEMENT:
        return Refinement(geo, agreement, False, f"refined fit keeps {agreement:.0%} of the trusted inliers "
                                                 f"(< {MIN_AGREEMENT:.0%})")
    return Refinement(geo, agreement, True)
