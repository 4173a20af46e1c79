"""Input sizing: huge frames are downscaled, and positions found on the small image map back exactly."""
from __future__ import annotations

import numpy as np
import pytest

from dejavu_ros.features.preprocess import limit_size, to_original_xy, to_resized_xy


def test_limit_size():
    big = np.zeros((300, 1000, 3), np.uint8)
    small, scale = limit_size(big, 500)
    assert small.shape == (150, 500, 3) and scale == pytest.approx(0.5)
    same, one = limit_size(big, 0)
    assert same is big and one == 1.0
    kept, one = limit_size(big, 1000)
    assert kept is big and one == 1.0


def test_positions_on_the_downscaled_image_map_back_to_the_original():
    # a bright dot at a known sub-pixel position of an 800x450 frame (a fixed webcam's size)
    rng = np.random.default_rng(0)
    original = (800, 451)
    truth = rng.uniform([20, 20], [780, 430], (12, 2))
    image = np.zeros((original[1], original[0]), np.float32)
    ys, xs = np.mgrid[0:original[1], 0:original[0]]
    for x, y in truth:
        image += np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * 2.5 ** 2))
    small, _ = limit_size(image, 640)
    resized = (small.shape[1], small.shape[0])
    assert resized != original and resized[0] == 640
    # the dots' centroids found on the small image, mapped back
    found = []
    for x, y in to_resized_xy(truth, original, resized):
        x0, y0 = int(round(x)), int(round(y))
        patch = small[y0 - 9:y0 + 10, x0 - 9:x0 + 10]
        py, px = np.mgrid[y0 - 9:y0 + 10, x0 - 9:x0 + 10]
        found.append([(patch * px).sum() / patch.sum(), (patch * py).sum() / patch.sum()])
    back = to_original_xy(np.array(found), resized, original)
    assert np.abs(back - truth).max() < 0.05
    # dividing by one scale factor instead is biased (pixel centres, and per-axis rounding)
    naive = np.array(found) * (original[0] / resized[0])
    assert np.abs(naive - truth).mean() > 3 * np.abs(back - truth).mean()
