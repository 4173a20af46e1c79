"""Sparse matching: Shi-Tomasi corners, DVF descriptors at them, MNN / ratio / stability / reciprocity
filters, RANSAC on the essential or fundamental matrix, and PnP when the keyframe has 3-D points.

Two directions (``MatchingConfig.direction``): ``corners`` pairs query corners with keyframe
corners (as in the paper); ``dense`` searches each keyframe corner over every query pixel, so a
night query needs no corners of its own.
"""
from .config import MatchingConfig
from .corner_matching import match_corners
from .corners import detect_corners
from .dense_matching import match_dense
from .matches import Matches, MatchingError
from .pipeline import corner_features, match_to_keyframe
from .pnp import PnPResult, estimate_pnp, solve_pnp
from .sampling import rescale_xy, sample_descriptors, sample_shifted
from .verification import GeometricVerification, Verification, verify

__all__ = [
    "GeometricVerification", "Matches", "MatchingConfig", "MatchingError", "PnPResult", "corner_features",
    "detect_corners", "estimate_pnp", "match_corners", "match_dense", "match_to_keyframe", "rescale_xy",
    "sample_descriptors", "sample_shifted", "solve_pnp", "Verification", "verify",
]
