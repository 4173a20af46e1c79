"""A query frame against one stored keyframe, in original image pixels: the verification the trust
decision weighs (``matching.method`` / ``direction``), and the refined fit that a trusted keyframe
publishes (``matching.refine``, matching/refine.py)."""
from __future__ import annotations

import dataclasses

import numpy as np

from ..features.extractor import FeatureExtractor
from ..geometry import CameraIntrinsics
from ..map.keyframe import Keyframe
from ..map.store import KeyframeMap
from ..map.thumbnail import decode_thumbnail
from ..matching.config import MatchingConfig
from ..matching.matches import Matches
from ..matching.pipeline import match_to_keyframe
from ..matching.refine import Refinement, refine_uses_head, refine_uses_sift, refine_verification
from ..matching.sift import match_sift, uses_dvf, uses_sift
from ..matching.verification import GeometricVerification, verify
from .frame import FrameFeatures


def query_scales(frame: FrameFeatures, kf: Keyframe, extractor: FeatureExtractor, kmap: KeyframeMap,
                 cfg: MatchingConfig) -> list[float]:
    """``matching.query_scales``, plus the keyframe's own scale against the query when
    ``matching.scale_search`` is on (from its thumbnail: FrameFeatures.scale_against). The search runs
    once per frame and keyframe: the verification and the refined fit of a keyframe share it."""
    scales = list(cfg.query_scales)
    if not cfg.scale_search:
        return scales
    found_by_keyframe = frame.__dict__.setdefault("_keyframe_scale", {})
    if kf.id not in found_by_keyframe:
        thumbnail = decode_thumbnail(kmap.load_thumbnail(int(kf.id)))
        found_by_keyframe[kf.id] = frame.scale_against(extractor, thumbnail)
    found = found_by_keyframe[kf.id]
    return scales + [found] if found is not None and all(abs(found - s) > 1e-6 for s in scales) else scales


def _dvf_matches(frame: FrameFeatures, keypoints: np.ndarray, descriptors: np.ndarray, maps, cfg: MatchingConfig,
                 query_xy=None) -> Matches:
    """One keyframe keypoint set against the query's DVF map(s); each keypoint keeps its best scale."""
    return Matches.best_of_scales([match_to_keyframe(dense, keypoints, descriptors.astype(np.float32), cfg,
                                                     query_xy=query_xy, query_image_size=frame.size,
                                                     layout=frame.search_layout(dense, cfg)
                                                     if cfg.direction == "dense" else None)
                                   for dense in maps])


def verify_keyframe(frame: FrameFeatures, kf: Keyframe, camera: CameraIntrinsics | None,
                    extractor: FeatureExtractor, kmap: KeyframeMap, cfg: MatchingConfig,
                    query_xy: np.ndarray | None = None) -> GeometricVerification:
    """Sparse matching + RANSAC of one keyframe (``query_xy``: the query's corners, direction corners)."""
    parts = []
    if uses_dvf(cfg) or kf.sift_keypoints is None:  # a keyframe mapped without SIFT falls back on DVF
        maps = frame.pyramid(extractor, query_scales(frame, kf, extractor, kmap, cfg)) \
            if cfg.direction == "dense" else [frame.dense]
        parts.append(_dvf_matches(frame, kf.keypoints, kf.descriptors, maps, cfg, query_xy))
    if uses_sift(cfg) and kf.sift_keypoints is not None:
        parts.append(match_sift(*frame.sift(cfg.max_corners), kf.sift_keypoints, kf.sift_descriptors))
    matches = Matches.concat(parts)
    matches.query_xy = frame.to_original(matches.query_xy)
    return verify(matches, cfg, K_query=camera, K_map=kf.camera_k, query_size=frame.original_size)


def refine_keyframe(frame: FrameFeatures, kf: Keyframe, camera: CameraIntrinsics | None,
                    trusted: GeometricVerification, extractor: FeatureExtractor, kmap: KeyframeMap,
                    cfg: MatchingConfig) -> tuple[Refinement | None, np.ndarray | None]:
    """(``matching.refine``'s fit of the trusted keyframe, the 3-D points its ``map_idx`` refer to: the
    corners', then the head keypoints'); None when the keyframe was mapped without those features."""
    parts, points = [], kf.points3d
    if refine_uses_head(cfg) and kf.head_keypoints is not None:
        maps = frame.pyramid(extractor, query_scales(frame, kf, extractor, kmap, cfg))
        head = _dvf_matches(frame, kf.head_keypoints, kf.head_descriptors, maps,
                            dataclasses.replace(cfg, direction="dense"))  # the head's keypoints are the keyframe's
        head.map_idx = np.where(head.map_idx >= 0, head.map_idx + len(kf.keypoints), -1)  # after the corners
        parts.append(head)
        if points is not None:
            extra = kf.head_points3d if kf.head_points3d is not None else \
                np.full((len(kf.head_keypoints), 3), np.nan, np.float32)
            points = np.concatenate([points, extra])
    if refine_uses_sift(cfg) and kf.sift_keypoints is not None:
        parts.append(match_sift(*frame.sift(cfg.max_corners), kf.sift_keypoints, kf.sift_descriptors))
    if not parts:
        return None, kf.points3d
    extra_matches = Matches.concat(parts)
    extra_matches.query_xy = frame.to_original(extra_matches.query_xy)
    return refine_verification(trusted, [extra_matches], cfg, K_query=camera, K_map=kf.camera_k,
                               query_size=frame.original_size), points
