"""Keyframe corners searched over every pixel of the query's dense map (direction b)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from matching_support import patch_dense, shift_image, texture

from dejavu_ros.matching import (MatchingConfig, MatchingError, detect_corners, match_dense,
                                 match_to_keyframe, sample_descriptors)


@pytest.fixture(scope="module")
def scene():
    gray = texture(blur=1.0)
    dense = patch_dense(gray, radius=5, blur=0.5, smooth=1.0)
    xy = detect_corners(gray, MatchingConfig(max_corners=300))
    return gray, dense, xy, sample_descriptors(dense, xy)


def _interior(xy, shift, shape, margin=8):
    moved = xy + shift
    return np.all((moved >= margin) & (moved <= [shape[1] - 1 - margin, shape[0] - 1 - margin]), axis=1)


@pytest.mark.parametrize("coarse,stride", [("exact", 4), ("pooled", 2)])
def test_dense_search_finds_the_shifted_pixel(scene, coarse, stride):
    gray, _, xy, desc = scene
    shift = np.array([6.0, -4.0], np.float32)
    query = patch_dense(shift_image(gray, *shift), radius=5, blur=0.5, smooth=1.0)
    m = match_dense(xy, desc, query, MatchingConfig(dense_coarse=coarse, dense_stride=stride))
    err = np.abs(m.query_xy - m.map_xy - shift).max(axis=1)
    inside = _interior(m.map_xy, shift, gray.shape)
    assert m.direction == "dense" and np.all(m.query_idx == -1)
    assert inside.sum() > 0.7 * _interior(xy, shift, gray.shape).sum()
    assert np.mean(err[inside] < 0.5) > 0.95
    assert np.array_equal(m.map_xy, xy[m.map_idx])


def test_a_frame_made_layout_gives_the_same_matches_and_a_stale_one_is_ignored(scene):
    from dejavu_ros.matching.dense_matching import cell_layout, search_layout, unit_map

    gray, _, xy, desc = scene
    query = patch_dense(shift_image(gray, 6.0, -4.0), radius=5, blur=0.5, smooth=1.0)
    flat = query.norm(dim=0) < 0.5  # textureless pixels are zero vectors: made unit, so the map is used as given
    query[0][flat] = 1.0
    assert unit_map(query) is query
    cfg = MatchingConfig(dense_coarse="exact")
    plain = match_dense(xy, desc, query, cfg)
    given = match_dense(xy, desc, query, cfg, layout=search_layout(query, cfg))
    assert len(plain) > 50 and np.array_equal(plain.query_xy, given.query_xy)
    assert np.array_equal(plain.map_idx, given.map_idx)
    # the layout is what the search uses: another map's changes the matches, a misfit is refused
    other = cell_layout(patch_dense(gray, radius=5, blur=0.5, smooth=1.0), cfg.dense_stride)
    assert not np.array_equal(match_dense(xy, desc, query, cfg, layout=other).query_xy, plain.query_xy)
    with pytest.raises(MatchingError, match="cell layout"):
        match_dense(xy, desc, query, MatchingConfig(dense_coarse="exact", dense_stride=2), layout=other)
    # a map that is not unit length is normalised first: a layout made from it as given is not used
    scaled = query * torch.from_numpy(np.random.default_rng(0).uniform(1.0, 3.0, query.shape[1:]).astype(np.float32))
    assert search_layout(scaled, cfg) is None  # match_dense makes its own from the map it normalises
    assert np.array_equal(match_dense(xy, desc, scaled, cfg, layout=cell_layout(scaled, cfg.dense_stride)).query_xy,
                          match_dense(xy, desc, scaled, cfg).query_xy)
    assert search_layout(query, MatchingConfig(dense_coarse="pooled", dense_stride=2)) is None


def test_subpixel_shift_is_recovered_below_a_quarter_pixel(scene):
    gray, _, xy, desc = scene
    shift = np.array([2.5, 1.25], np.float32)
    query = patch_dense(shift_image(gray, *shift), radius=5, blur=0.5, smooth=1.0)
    m = match_dense(xy, desc, query, MatchingConfig(dense_coarse="exact"))
    inside = _interior(m.map_xy, shift, gray.shape)
    err = np.linalg.norm(m.query_xy - m.map_xy - shift, axis=1)[inside]
    assert len(err) > 100
    assert np.median(err) < 0.25


def _smooth_field(n=8, h=48, w=64, seed=0):
    rng = np.random.default_rng(seed)
    chans = [cv2.GaussianBlur(rng.normal(size=(h, w)).astype(np.float32), (0, 0), 3.0) for _ in range(n)]
    return F.normalize(torch.from_numpy(np.stack(chans)), dim=0)


def _plant(field, desc, x, y, sigma=1.5):
    """Blend ``desc`` into the field around (x, y) with a Gaussian bump: a clean, symmetric peak."""
    h, w = field.shape[1:]
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    bump = torch.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma ** 2))
    return F.normalize(field + 20 * bump * desc[:, None, None], dim=0)


def test_reciprocity_rejects_the_ambiguous_one_of_two_near_duplicate_corners():
    a = F.normalize(torch.tensor([1.0, -1, 0.5, 0, 0, 0, 0, -1]), dim=0)
    query = _plant(_smooth_field(), a, 20, 30)
    twin = F.normalize(a + 0.02 * torch.tensor([0, 0, 0, 1.0, 0, 0, 0, 0]), dim=0)
    other = sample_descriptors(query, [[50, 10]])[0]
    kxy = np.array([[100, 100], [200, 100], [300, 50]], np.float32)
    desc = torch.stack([a, twin, other])
    base = dict(dense_coarse="exact", dense_stride=2, ratio=1.0, stability=False)
    m = match_dense(kxy, desc, query, MatchingConfig(reciprocity=True, **base))
    assert sorted(m.map_idx.tolist()) == [0, 2]
    assert m.counts["ratio"] == 3 and m.counts["reciprocity"] == 2
    found = dict(zip(m.map_idx.tolist(), m.query_xy.tolist()))
    assert np.allclose(found[0], [20, 30], atol=0.5) and np.allclose(found[2], [50, 10], atol=0.5)
    both = match_dense(kxy, desc, query, MatchingConfig(reciprocity=False, **base))
    assert sorted(both.map_idx.tolist()) == [0, 1, 2]


def test_ratio_test_rejects_a_pattern_repeated_beyond_the_exclusion_radius():
    a = F.normalize(torch.tensor([1.0, -1, 0.5, 0, 0, 0, 0, -1]), dim=0)
    once = _plant(_smooth_field(), a, 20, 30)
    twice = once.clone()
    twice[:, 20:41, 35:56] = once[:, 20:41, 10:31]  # an exact copy of the peak, 25 px to the right
    cfg = MatchingConfig(dense_coarse="exact", dense_stride=2, stability=False, ratio=0.8,
                         dense_exclusion_px=8)
    assert len(match_dense([[5, 5]], a[None], once, cfg)) == 1
    rejected = match_dense([[5, 5]], a[None], twice, cfg)
    assert len(rejected) == 0 and rejected.counts["ratio"] == 0
    # A copy inside the exclusion radius is the same place, not a competitor.
    near = _plant(once, a, 24, 30)
    assert len(match_dense([[5, 5]], a[None], near, cfg)) == 1


def test_stability_rejects_matches_on_a_white_noise_map():
    torch.manual_seed(0)
    noise = F.normalize(torch.randn(16, 40, 50), dim=0)
    rng = np.random.default_rng(1)
    kxy = np.stack([rng.integers(3, 47, 40), rng.integers(3, 37, 40)], axis=1).astype(np.float32)
    desc = sample_descriptors(noise, kxy)
    loose = MatchingConfig(dense_coarse="exact", dense_stride=1, stability=False)
    found = match_dense(kxy, desc, noise, loose)
    assert len(found) > 30 and np.allclose(found.query_xy, found.map_xy, atol=0.5)
    strict = match_dense(kxy, desc, noise, MatchingConfig(dense_coarse="exact", dense_stride=1))
    assert strict.counts["stability"] < 0.2 * len(found)


def test_tiny_maps_and_empty_keyframes():
    torch.manual_seed(0)
    tiny = F.normalize(torch.randn(5, 3, 7), dim=0)
    desc = sample_descriptors(tiny, [[1, 1], [5, 2]])
    for coarse in ("pooled", "exact"):
        m = match_dense([[1, 1], [5, 2]], desc, tiny, MatchingConfig(dense_coarse=coarse, stability=False))
        assert len(m) <= 2 and np.all(m.query_xy >= 0)
    empty = match_dense(np.zeros((0, 2)), torch.zeros((0, 5)), tiny)
    assert len(empty) == 0 and empty.direction == "dense"
    with pytest.raises(MatchingError, match="keyframe_desc"):
        match_dense([[1, 1]], torch.zeros((1, 4)), tiny)


def test_match_to_keyframe_reports_image_pixels_for_a_downscaled_query_map(scene):
    gray, _, xy, desc = scene
    from dejavu_ros.features.preprocess import resize

    shift = np.array([8.0, 6.0], np.float32)
    shifted = shift_image(gray, *shift)
    full = patch_dense(shifted, radius=5, blur=0.5, smooth=1.0)
    # The same map as if DVF had run on a half-size query image.
    half = F.normalize(resize(full[None], (160, 120))[0], dim=0)
    cfg = MatchingConfig(dense_coarse="exact", stability=False)
    m = match_to_keyframe(half, xy, desc, cfg, query_image_size=(320, 240))
    inside = _interior(m.map_xy, shift, gray.shape)
    err = np.abs(m.query_xy - m.map_xy - shift).max(axis=1)[inside]
    assert len(err) > 30 and np.median(err) < 1.5
    corners = MatchingConfig(direction="corners", stability=False)
    qxy = detect_corners(shifted)
    mc = match_to_keyframe(half, xy, desc, corners, query_xy=qxy, query_image_size=(320, 240))
    errc = np.abs(mc.query_xy - mc.map_xy - shift).max(axis=1)
    assert len(mc) > 30 and np.mean(errc < 2.0) > 0.8
    assert np.all(np.isin(mc.query_xy, qxy))
    with pytest.raises(MatchingError, match="query_xy"):
        match_to_keyframe(half, xy, desc, corners)


@pytest.mark.parametrize("h,w,stride", [(24, 32, 4), (23, 30, 4), (13, 7, 3), (5, 6, 4), (16, 16, 1)])
def test_cell_maxima_equal_a_max_pool_of_the_full_similarity(h, w, stride):
    """The cell maxima the coarse search ranks, partial edge cells included, against max pooling the
    full-resolution similarity (padded with values that never win)."""
    from dejavu_ros.matching.dense_matching import _cell_maxima, cell_layout

    g = torch.Generator().manual_seed(h * w + stride)
    dense = F.normalize(torch.randn(6, h, w, generator=g), dim=0)
    desc = F.normalize(torch.randn(9, 6, generator=g), dim=1)
    sim = (desc @ dense.reshape(6, -1)).view(9, 1, h, w)
    expected = F.max_pool2d(F.pad(sim, (0, -w % stride, 0, -h % stride), value=float("-inf")), stride)
    # the same dot products, summed in the order of whichever BLAS kernel the CPU gets: equal to rounding
    torch.testing.assert_close(_cell_maxima(desc, cell_layout(dense, stride)), expected.reshape(9, -1),
                               atol=1e-6, rtol=0)


@pytest.mark.parametrize("dtype,grad", [(torch.bfloat16, False), (torch.float32, True)])
def test_dense_search_takes_bf16_and_autograd_inputs(dtype, grad):
    from dejavu_ros.matching.dense_matching import dense_search

    g = torch.Generator().manual_seed(3)
    dense = F.normalize(torch.randn(6, 16, 20, generator=g), dim=0)
    desc = F.normalize(torch.randn(5, 6, generator=g), dim=1)
    ref = dense_search(desc, dense, MatchingConfig())
    out = dense_search(desc.to(dtype).requires_grad_(grad), dense.to(dtype), MatchingConfig())
    assert out[0].shape == ref[0].shape and torch.isfinite(out[1]).all()
    if dtype == torch.float32:
        assert all(torch.equal(x, y) for x, y in zip(out, ref))
