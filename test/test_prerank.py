"""The coarse CX pre-rank: pooled grids, kept in step with a growing map, and on the shared Nordland
line it puts the right place into the shortlist far more often than the global descriptor does."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dejavu_ros.config import DejavuConfig
from dejavu_ros.similarity.config import SimilarityConfig
from dejavu_ros.similarity.cx import contextual_similarity
from dejavu_ros.similarity.grid import pooled_grid
from dejavu_ros.similarity.prerank import CoarseCX


def unit_grids(b, h, w, seed=0, dtype=torch.float32):
    g = torch.nn.functional.normalize(torch.randn(b, 10, h, w, generator=torch.Generator().manual_seed(seed)), dim=1)
    return g.to(dtype)


@pytest.mark.parametrize("shape,stride,expected", [((16, 32), 4, (4, 8)), ((24, 32), 4, (6, 8)),
                                                   ((15, 31), 4, (4, 8)), ((3, 5), 8, (1, 1))])
def test_pooled_grid_keeps_unit_cells_and_rounds_up(shape, stride, expected):
    pooled = pooled_grid(unit_grids(2, *shape), stride)
    assert tuple(pooled.shape) == (2, 10, *expected)
    np.testing.assert_allclose(pooled.norm(dim=1).numpy(), 1.0, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_coarse_cx_follows_a_growing_and_shrinking_map(dtype):
    sim = SimilarityConfig()
    grids = unit_grids(12, 16, 32, seed=1, dtype=dtype)
    query = unit_grids(1, 16, 32, seed=2)[0]
    rows = np.array([0, 5, 11, 3])
    expected = contextual_similarity(pooled_grid(query[None], 4)[0], pooled_grid(grids, 4)[rows]).numpy()
    coarse = CoarseCX()
    coarse.scores(query, grids[:7], np.arange(7), sim)  # the map as it was, then it grows
    np.testing.assert_allclose(coarse.scores(query, grids, rows, sim), expected, rtol=1e-5)
    fewer = coarse.scores(query, grids[:4], np.array([3, 0]), sim)  # keyframes removed: pooled again
    np.testing.assert_allclose(fewer, expected[[3, 0]], rtol=1e-5)
    sim.prerank_stride = 2  # another stride: pooled again
    again = coarse.scores(query, grids, rows, sim)
    twice = contextual_similarity(pooled_grid(query[None], 2)[0], pooled_grid(grids, 2)[rows]).numpy()
    np.testing.assert_allclose(again, twice, rtol=1e-5)


@pytest.mark.slow
def test_prerank_finds_nordland_winter_places_the_global_descriptor_misses(shared_data):
    """Summer places 1611-1690 as the map, their winter frames as queries (80 of each)."""
    from dejavu_ros.evaluation import scenarios
    from dejavu_ros.relocalization.frame import describe
    from engine_fixtures import trained_extractor

    root = shared_data("nordland_64x32")
    cfg, extractor = DejavuConfig(), trained_extractor()
    places = range(1611, 1691)
    summer = [describe(scenarios.nordland_frame(root, "summer", p).load(), extractor, cfg) for p in places]
    winter = [describe(scenarios.nordland_frame(root, "winter", p).load(), extractor, cfg) for p in places]
    glob = torch.stack([f.global_desc for f in summer])
    grids = torch.stack([f.grid for f in summer])
    coarse, k = CoarseCX(), 10
    by_cosine = by_coarse = 0
    for i, q in enumerate(winter):
        cosine_top = torch.topk(glob @ q.global_desc, k).indices.numpy()
        pre = coarse.scores(q.grid, grids, np.arange(len(summer)), cfg.similarity)
        coarse_top = np.argsort(-pre)[:k]
        by_cosine += bool(np.any(np.abs(cosine_top - i) <= 1))
        by_coarse += bool(np.any(np.abs(coarse_top - i) <= 1))
    assert by_coarse >= by_cosine + 8 and by_coarse >= 0.8 * len(winter), (by_cosine, by_coarse)
