"""Settings of sparse matching and geometric verification."""
from __future__ import annotations

from dataclasses import dataclass

from ..schema import param


@dataclass
class MatchingConfig:
    direction: str = param("dense", "corners = corner-to-corner (paper); dense = keyframe corners searched "
                           "over every query pixel", choices=("corners", "dense"), dynamic=True)
    max_corners: int = param(500, "Shi-Tomasi: maximum corners per image", low=8, high=20000)
    quality_level: float = param(0.01, "Shi-Tomasi: quality level", low=1e-5, high=1.0)
    min_distance: float = param(8.0, "Shi-Tomasi: minimum distance between corners (px)", low=0.0, high=500.0)
    block_size: int = param(5, "Shi-Tomasi: block size", low=3, high=31)
    ratio: float = param(0.9, "Ratio test: best / second-best descriptor distance", low=0.0, high=1.0,
                         dynamic=True)
    stability: bool = param(True, "Stability test: one-pixel shifted descriptors must match the same point",
                            dynamic=True)
    stability_px: float = param(2.0, "Stability test: allowed disagreement (px)", low=0.0, high=50.0,
                                dynamic=True)
    ransac: str = param("usac_magsac", "OpenCV robust estimator",
                        choices=("ransac", "usac_default", "usac_magsac", "usac_accurate", "lmeds"))
    ransac_threshold: float = param(2.0, "RANSAC inlier threshold (px)", low=0.1, high=50.0, dynamic=True)
    ransac_confidence: float = param(0.999, "RANSAC confidence", low=0.5, high=0.999999)
    ransac_max_iters: int = param(2000, "RANSAC iterations", low=10, high=100000)
    min_inliers: int = param(15, "Accept a verification with at least this many inliers", low=5, high=10000,
                             dynamic=True)
    min_inlier_ratio: float = param(0.25, "…and at least this inlier ratio", low=0.0, high=1.0, dynamic=True)
    pnp_reprojection_px: float = param(4.0, "PnP RANSAC reprojection threshold (px)", low=0.1, high=50.0)
