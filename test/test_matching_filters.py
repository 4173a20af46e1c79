"""Corner-to-corner matching on hand-built descriptor sets: MNN, ratio test, stability test."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dejavu_ros.matching import MatchingConfig, MatchingError, match_corners
from dejavu_ros.matching.filters import distance_ratio, nearest_two

# Four well separated unit directions in 4-D, and positions far apart.
E = torch.eye(4)
MAP_XY = np.array([[10, 10], [50, 10], [10, 50], [50, 50]], np.float32)


def unit(*rows) -> torch.Tensor:
    return F.normalize(torch.tensor(rows, dtype=torch.float32), dim=1)


def cfg(**kw) -> MatchingConfig:
    base = dict(ratio=0.8, stability=True, stability_px=2.0)
    base.update(kw)
    return MatchingConfig(**base)


def test_mutual_nearest_neighbours_only():
    # q0 -> m0 (mutual). q1 and q2 both prefer m1; m1 prefers q1, so q2 is dropped.
    query = unit([1, 0.05, 0, 0], [0, 1, 0.05, 0], [0.3, 1, 0, 0.2])
    qxy = np.array([[1, 1], [2, 2], [3, 3]], np.float32)
    m = match_corners(qxy, query, MAP_XY, E, cfg(ratio=1.0))
    assert sorted(zip(m.query_idx.tolist(), m.map_idx.tolist())) == [(0, 0), (1, 1)]
    assert m.counts["mutual"] == 2
    assert np.array_equal(m.map_xy, MAP_XY[m.map_idx]) and np.array_equal(m.query_xy, qxy[m.query_idx])


def test_ratio_test_rejects_ambiguous_corners():
    # q0 sits between m0 and m1 (ambiguous), q1 is close to m2 only.
    query = unit([1, 0.95, 0, 0], [0, 0, 1, 0.1])
    m = match_corners(np.zeros((2, 2)), query, MAP_XY, E, cfg())
    assert m.query_idx.tolist() == [1] and m.map_idx.tolist() == [2]
    assert m.counts == {"query_corners": 2, "map_corners": 4, "mutual": 2, "ratio": 1}
    loose = match_corners(np.zeros((2, 2)), query, MAP_XY, E, cfg(ratio=1.0))
    assert len(loose) == 2
    assert 0 < m.ratio[0] < 0.8 and 0 < m.scores[0] <= 1


def test_stability_rejects_a_point_whose_shifted_descriptors_match_elsewhere():
    query = unit([1, 0, 0, 0.1], [0, 1, 0, 0.1])
    stable = query[0].expand(4, 4)
    # One of q1's shifted descriptors lands on m3, 40 px from its unshifted match m1.
    near_m3 = F.normalize(torch.tensor([0.1, 0.2, 0, 1.0]), dim=0)
    unstable = torch.stack([query[1], query[1], near_m3, query[1]])
    shifted = torch.stack([stable, unstable], dim=1)  # (4, 2, n)
    m = match_corners(np.zeros((2, 2)), query, MAP_XY, E, cfg(), query_shifted=shifted)
    assert m.query_idx.tolist() == [0]
    assert m.counts["ratio"] == 2 and m.counts["stability"] == 1
    off = match_corners(np.zeros((2, 2)), query, MAP_XY, E, cfg(stability=False), query_shifted=shifted)
    assert off.query_idx.tolist() == [0, 1]


def test_stability_tolerates_a_neighbour_within_stability_px():
    # m1 has a twin corner 1.5 px away; a shifted descriptor flipping to the twin still counts as stable.
    map_xy = np.array([[10, 10], [50, 10], [51.5, 10]], np.float32)
    map_desc = unit([1, 0, 0, 0], [0, 1, 0, 0], [0, 0.8, 0.6, 0])
    query = unit([0, 1, 0.1, 0])
    shifted = torch.stack([query[0], map_desc[2], query[0], query[0]])[:, None]
    m = match_corners([[5, 5]], query, map_xy, map_desc, cfg(ratio=1.0), query_shifted=shifted)
    assert m.map_idx.tolist() == [1]
    strict = match_corners([[5, 5]], query, map_xy, map_desc, cfg(ratio=1.0, stability_px=1.0),
                           query_shifted=shifted)
    assert len(strict) == 0


def test_single_keyframe_corner_has_no_competitor():
    idx, best, second = nearest_two(torch.tensor([[0.9], [0.1]]))
    assert idx.tolist() == [0, 0] and torch.isinf(second).all()
    assert distance_ratio(best, second).tolist() == [0.0, 0.0]
    m = match_corners([[1, 1]], unit([1, 0, 0, 0]), [[3, 3]], unit([0.9, 0.1, 0, 0]), cfg())
    assert len(m) == 1 and m.ratio[0] == 0.0


def test_float16_keyframe_descriptors_are_accepted():
    rng = np.random.default_rng(0)
    desc = F.normalize(torch.from_numpy(rng.normal(size=(30, 10)).astype(np.float32)), dim=1)
    xy = rng.uniform(0, 100, size=(30, 2)).astype(np.float32)
    m = match_corners(xy, desc, xy, desc.numpy().astype(np.float16), cfg())
    assert len(m) == 30 and np.array_equal(m.query_idx, m.map_idx)
    assert np.all(m.distance < 1e-2)


@pytest.mark.parametrize("nq,nm", [(0, 4), (3, 0), (0, 0)])
def test_empty_sides_give_empty_matches(nq, nm):
    m = match_corners(np.zeros((nq, 2)), torch.zeros((nq, 4)), np.zeros((nm, 2)), torch.zeros((nm, 4)), cfg())
    assert len(m) == 0 and m.query_xy.shape == (0, 2) and m.direction == "corners"


def test_inconsistent_inputs_are_reported():
    with pytest.raises(MatchingError, match="descriptors"):
        match_corners(np.zeros((3, 2)), unit([1, 0, 0, 0]), MAP_XY, E)
    with pytest.raises(MatchingError, match="map_desc"):
        match_corners(np.zeros((1, 2)), unit([1, 0, 0, 0]), MAP_XY, torch.eye(4, 5))
    with pytest.raises(MatchingError, match="query_shifted"):
        match_corners(np.zeros((1, 2)), unit([1, 0, 0, 0]), MAP_XY, E, cfg(),
                      query_shifted=torch.zeros(4, 2, 4))
