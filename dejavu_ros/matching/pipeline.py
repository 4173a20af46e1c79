"""The two calls the engine and the map builder make: corner features of an image, and matching a
query's dense map to one keyframe in the configured direction.

Keyframe corners and returned query positions are in *image* pixels; the dense map may have been
computed on a resized image (``features.max_side``), so positions are converted on the way in and out.
"""
from __future__ import annotations

import numpy as np
import torch

from .config import MatchingConfig
from .corner_matching import match_corners
from .dense_matching import match_dense
from .keypoints import keyframe_keypoints
from .matches import Matches, MatchingError, as_xy, check_dense
from .sampling import rescale_xy, sample_descriptors, sample_shifted


def _dense_size(dense: torch.Tensor) -> tuple[int, int]:
    return int(dense.shape[2]), int(dense.shape[1])


def corner_features(image: np.ndarray, dense: torch.Tensor,
                    cfg: MatchingConfig | None = None) -> tuple[np.ndarray, torch.Tensor]:
    """Keyframe keypoints of ``image`` (K, 2, image pixels; ``cfg.keypoints``), unit descriptors (K, n)
    from ``dense``."""
    cfg = cfg or MatchingConfig()
    dense = check_dense(dense, "dense")
    xy = keyframe_keypoints(image, dense, cfg)
    image_size = (int(np.asarray(image).shape[1]), int(np.asarray(image).shape[0]))
    return xy, sample_descriptors(dense, _to_dense(xy, image_size, dense))


def _to_dense(xy: np.ndarray, image_size, dense: torch.Tensor) -> np.ndarray:
    size = _dense_size(dense)
    return xy if image_size is None or tuple(image_size) == size else rescale_xy(xy, image_size, size)


def match_to_keyframe(query_dense: torch.Tensor, keyframe_xy, keyframe_desc,
                      cfg: MatchingConfig | None = None, *, query_xy=None,
                      query_image_size: tuple[int, int] | None = None,
                      layout: torch.Tensor | None = None) -> Matches:
    """Match a query to one keyframe in ``cfg.direction``.

    ``query_xy``: the query's corners in image pixels (needed by the ``corners`` direction only).
    ``query_image_size``: (width, height) of the query image when the dense map is smaller.
    ``layout``: the query map's search layout (dense direction; dense_matching.search_layout).
    """
    cfg = cfg or MatchingConfig()
    dense = check_dense(query_dense, "query_dense")
    if cfg.direction == "dense":
        matches = match_dense(keyframe_xy, keyframe_desc, dense, cfg,
                              layout if dense is query_dense else None)  # made for the map as given
        if query_image_size is not None and tuple(query_image_size) != _dense_size(dense) and len(matches):
            matches.query_xy = rescale_xy(matches.query_xy, _dense_size(dense), query_image_size)
        return matches
    if query_xy is None:
        raise MatchingError("matching.direction 'corners' needs the query's corners (query_xy)")
    qxy = as_xy(query_xy, "query_xy")
    dxy = _to_dense(qxy, query_image_size, dense)
    shifted = sample_shifted(dense, dxy) if cfg.stability else None
    matches = match_corners(dxy, sample_descriptors(dense, dxy), keyframe_xy, keyframe_desc, cfg,
                            query_shifted=shifted)
    matches.query_xy = qxy[matches.query_idx]
    return matches
