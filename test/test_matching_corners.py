"""Shi-Tomasi corners: sub-pixel positions, limits from the config, and images without corners."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree
from matching_support import shift_image, texture

from dejavu_ros.matching import MatchingConfig, MatchingError, detect_corners


def _median_displacement(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    dist, idx = cKDTree(a).query(b)
    near = dist < 1.5
    assert near.sum() > 100
    return np.median(b[near] - a[idx[near]], axis=0)


def test_corners_follow_a_subpixel_shift():
    gray = texture(blur=1.5)
    shifted = shift_image(gray, 0.3, 0.6)
    cfg = MatchingConfig()
    disp = _median_displacement(detect_corners(gray, cfg), detect_corners(shifted, cfg))
    assert np.allclose(disp, [0.3, 0.6], atol=0.1)
    # Without the refinement the same measurement is stuck on the integer grid.
    integer = MatchingConfig(subpixel_radius=0)
    disp_int = _median_displacement(detect_corners(gray, integer), detect_corners(shifted, integer))
    assert np.all(np.mod(disp_int, 1.0) == 0.0)


def test_corner_count_spacing_and_bounds_follow_config():
    gray = texture()
    cfg = MatchingConfig(max_corners=50, min_distance=12.0)
    xy = detect_corners(gray, cfg)
    assert xy.dtype == np.float32 and xy.shape[1] == 2
    assert 30 <= len(xy) <= 50
    nearest = cKDTree(xy).query(xy, 2)[0][:, 1]
    assert nearest.min() >= cfg.min_distance / 2  # sub-pixel steps are < 3 px, merged ones are dropped
    assert np.all((xy >= 0) & (xy <= [gray.shape[1] - 1, gray.shape[0] - 1]))
    assert len(detect_corners(gray, MatchingConfig(max_corners=500))) > 200


def test_rgb_and_grey_give_the_same_corners():
    gray = texture()
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    assert np.array_equal(detect_corners(rgb), detect_corners(gray))


def test_mask_restricts_corners():
    gray = texture()
    mask = np.zeros_like(gray)
    mask[:, :100] = 255
    xy = detect_corners(gray, mask=mask)
    assert len(xy) > 10 and xy[:, 0].max() < 100 + 3


@pytest.mark.parametrize("image", [np.full((120, 160), 77, np.uint8), np.zeros((120, 160, 3), np.uint8),
                                   np.zeros((2, 2), np.uint8), np.zeros((0, 0), np.uint8)])
def test_featureless_or_tiny_images_give_no_corners(image):
    xy = detect_corners(image)
    assert xy.shape == (0, 2) and xy.dtype == np.float32


def test_bad_image_shape_is_reported():
    with pytest.raises(MatchingError, match="image"):
        detect_corners(np.zeros((4, 5, 6, 7), np.uint8))
    with pytest.raises(MatchingError, match="mask"):
        detect_corners(texture(), mask=np.ones((3, 3), np.uint8))
