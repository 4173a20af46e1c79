"""Bilinear descriptor sampling at sub-pixel positions (pixel centres at integer coordinates)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dejavu_ros.matching import MatchingError, rescale_xy, sample_descriptors, sample_shifted
from dejavu_ros.matching.sampling import SHIFTS


@pytest.fixture
def dense():
    torch.manual_seed(3)
    return F.normalize(torch.randn(6, 9, 11), dim=0)


def test_integer_positions_read_the_pixel(dense):
    xy = np.array([[0, 0], [10, 8], [4, 3], [7, 1]], np.float32)
    got = sample_descriptors(dense, xy)
    want = torch.stack([dense[:, int(y), int(x)] for x, y in xy])
    assert got.shape == (4, 6)
    assert torch.allclose(got, want, atol=1e-5)


def test_subpixel_positions_interpolate_bilinearly_and_renormalise(dense):
    got = sample_descriptors(dense, [[2.5, 4.0], [2.0, 4.25], [2.5, 4.5]])
    mid_x = F.normalize(dense[:, 4, 2] + dense[:, 4, 3], dim=0)
    quarter_y = F.normalize(0.75 * dense[:, 4, 2] + 0.25 * dense[:, 5, 2], dim=0)
    centre = F.normalize(dense[:, 4:6, 2:4].sum(dim=(1, 2)), dim=0)
    assert torch.allclose(got[0], mid_x, atol=1e-5)
    assert torch.allclose(got[1], quarter_y, atol=1e-5)
    assert torch.allclose(got[2], centre, atol=1e-5)
    assert torch.allclose(got.norm(dim=1), torch.ones(3), atol=1e-5)


def test_outside_positions_read_the_border(dense):
    got = sample_descriptors(dense, [[-3.0, 2.0], [15.0, 20.0]])
    assert torch.allclose(got[0], dense[:, 2, 0], atol=1e-5)
    assert torch.allclose(got[1], dense[:, 8, 10], atol=1e-5)


def test_shifted_samples_are_one_pixel_away(dense):
    xy = np.array([[3.25, 4.5], [6.0, 2.0]], np.float32)
    got = sample_shifted(dense, xy)
    assert got.shape == (len(SHIFTS), 2, 6)
    for s, (dx, dy) in enumerate(SHIFTS):
        assert torch.allclose(got[s], sample_descriptors(dense, xy + [dx, dy]), atol=1e-6)


def test_empty_positions(dense):
    assert sample_descriptors(dense, np.zeros((0, 2))).shape == (0, 6)
    assert sample_shifted(dense, []).shape == (4, 0, 6)


def test_bad_shapes_are_reported(dense):
    with pytest.raises(MatchingError, match="xy"):
        sample_descriptors(dense, np.zeros((3, 3)))
    with pytest.raises(MatchingError, match="dense"):
        sample_descriptors(dense[0], [[1.0, 1.0]])
    with pytest.raises(MatchingError, match="finite"):
        sample_descriptors(dense, [[np.nan, 1.0]])


def test_rescaled_positions_sample_the_resized_map_at_the_same_point():
    from dejavu_ros.features.preprocess import resize

    ys, xs = torch.meshgrid(torch.linspace(0, 1, 48), torch.linspace(0, 1, 64), indexing="ij")
    smooth = F.normalize(torch.stack([torch.sin(3 * xs), torch.cos(2 * ys), xs * ys + 0.5]), dim=0)
    small = F.normalize(resize(smooth[None], (32, 24))[0], dim=0)
    xy = np.array([[0, 0], [63, 47], [20.5, 30.25], [50, 5]], np.float32)
    small_xy = rescale_xy(xy, (64, 48), (32, 24))
    assert np.allclose(small_xy[:2], [[0, 0], [31, 23]])
    assert torch.allclose(sample_descriptors(small, small_xy), sample_descriptors(smooth, xy), atol=2e-3)
