"""Settings of sparse matching and geometric verification."""
from __future__ import annotations

from dataclasses import dataclass

from ..schema import param


@dataclass
class MatchingConfig:
    method: str = param("dvf", "Which matches verify a keyframe: dvf (the network's descriptors), sift (OpenCV "
                        "SIFT) or dvf+sift (both into one RANSAC; the map must be built with sift in the method "
                        "to store SIFT keypoints)", choices=("dvf", "sift", "dvf+sift"), dynamic=True)
    direction: str = param("dense", "corners = corner-to-corner (paper); dense = keyframe corners searched "
                           "over every query pixel", choices=("corners", "dense"), dynamic=True)
    query_scales: list[float] = param([1.0], "Dense direction: scales at which the query's DVF map is searched "
                                      "(a small pyramid for queries seen nearer or farther than the keyframe: "
                                      "e.g. 1.0,0.7,1.4; every extra scale costs one more network pass)",
                                      low=0.25, high=4.0)
    scale_search: bool = param(False, "Dense direction: estimate each verified keyframe's scale against the "
                               "query from its thumbnail (the dense scale search) and search the query at that "
                               "scale too (one more network pass per scale step)", dynamic=True)
    keypoints: str = param("shi_tomasi", "Keyframe keypoints: shi_tomasi (intensity corners, the paper's "
                           "matcher) or dvf_head (maxima of the keypoint head's matchability on the DVF map, "
                           "trained for day/night; used when a map is built)", choices=("shi_tomasi", "dvf_head"))
    refine: str = param("dvf_head+sift", "Published matches and pose of a trusted keyframe: off = the verification's own "
                        "inliers; dvf_head+sift = one more RANSAC over those inliers, the keypoint head's DVF matches "
                        "and SIFT matches, kept when it keeps most of the verification's inliers (the trust "
                        "decision is unchanged: it always weighs the verification above; the map must be built "
                        "with this setting to store head keypoints and SIFT)",
                        choices=("off", "dvf_head+sift"), dynamic=True)
    keypoint_head: str = param("", "Keypoint head weights (safetensors); empty = the shipped "
                               "models/keypoint_head.safetensors")
    keypoint_threshold: float = param(0.05, "dvf_head: lowest matchability kept as a keypoint", low=0.0,
                                      high=1.0)
    max_corners: int = param(500, "Keypoints (Shi-Tomasi or dvf_head): maximum per image", low=8, high=20000)
    quality_level: float = param(0.01, "Shi-Tomasi: quality level", low=1e-5, high=1.0)
    min_distance: float = param(8.0, "Minimum distance between keypoints (px; Shi-Tomasi and dvf_head)", low=0.0, high=500.0)
    block_size: int = param(5, "Shi-Tomasi: block size", low=3, high=31)
    subpixel_radius: int = param(3, "Sub-pixel corner refinement: half window (px); 0 = integer corners",
                                 low=0, high=15)
    ratio: float = param(0.9, "Ratio test: best / second-best descriptor distance", low=0.0, high=1.0,
                         dynamic=True)
    stability: bool = param(True, "Stability test: one-pixel shifted descriptors must match the same point",
                            dynamic=True)
    stability_px: float = param(2.0, "Stability test: allowed disagreement (px)", low=0.0, high=50.0,
                                dynamic=True)
    dense_stride: int = param(4, "Dense direction: cell size (px) of the coarse search; the best cells are "
                              "then refined at full resolution (1 = every pixel is a cell)", low=1, high=16,
                              dynamic=True)
    dense_coarse: str = param("exact", "Dense direction coarse search: exact = full-resolution similarity, "
                              "best pixel per cell (finds the true best pixel); pooled = similarity to the "
                              "pooled query map (several times faster on CPU, misses peaks of descriptors "
                              "that vary within a cell)", choices=("exact", "pooled"), dynamic=True)
    dense_peaks: int = param(3, "Dense direction: separated coarse peaks refined per keyframe corner",
                             low=2, high=16, dynamic=True)
    dense_exclusion_px: float = param(8.0, "Dense direction: the ratio test's second best lies at least this "
                                      "far from the best pixel", low=1.0, high=200.0, dynamic=True)
    reciprocity: bool = param(True, "Dense direction: the query descriptor at the found pixel must have the "
                              "keyframe corner as its nearest keyframe descriptor", dynamic=True)
    ransac: str = param("usac_magsac", "OpenCV robust estimator",
                        choices=("ransac", "usac_default", "usac_magsac", "usac_accurate", "lmeds"))
    ransac_threshold: float = param(2.0, "RANSAC inlier threshold (px)", low=0.1, high=50.0, dynamic=True)
    ransac_confidence: float = param(0.999, "RANSAC confidence", low=0.5, high=0.999999)
    ransac_max_iters: int = param(2000, "RANSAC iterations", low=10, high=100000)
    min_inliers: int = param(20, "Accept a verification with at least this many inliers", low=5, high=10000,
                             dynamic=True)
    min_inlier_ratio: float = param(0.25, "…and at least this inlier ratio", low=0.0, high=1.0, dynamic=True)
    pnp_reprojection_px: float = param(4.0, "PnP RANSAC reprojection threshold (px)", low=0.1, high=50.0)
    pnp_min_inliers: int = param(12, "Accept a PnP pose with at least this many inliers", low=4, high=10000,
                                 dynamic=True)
    pnp_min_sigma_px: float = param(0.5, "PnP covariance: floor on the reprojection noise (px) so that "
                                    "near-perfect fits do not claim near-zero uncertainty",
                                    low=0.01, high=50.0)
