"""Contextual similarity against a literal per-element reference, and its invariants."""
import math

import pytest
import torch
import torch.nn.functional as F

from dejavu_ros.similarity.cx import (contextual_similarity, cx_directional, cx_loss, as_vectors,
                                      pairwise_matrix)
from dejavu_ros.similarity.grid import grid_size, to_grid
from dejavu_ros.similarity.global_descriptor import global_descriptor, shortlist

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def unit_maps(*shape, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g, dtype=dtype), dim=-3)


def reference_cx(source, target, offset=1.0, bandwidth=0.5):
    """The formula of DESIGN.md evaluated element by element in float64."""
    s = [v.double() for v in as_vectors(source)[0]]
    t = [v.double() for v in as_vectors(target)[0]]
    d = [[max(0.0, float(((ti - sj) ** 2).sum())) for sj in s] for ti in t]
    cols = range(len(s))
    mins = [min(d[i][j] for i in range(len(t))) for j in cols]
    w = [[math.exp((offset - d[i][j] / (mins[j] + 1e-5)) / bandwidth) for j in cols] for i in range(len(t))]
    sums = [sum(w[i][j] for i in range(len(t))) for j in cols]
    return sum(max(w[i][j] / sums[j] for j in cols) for i in range(len(t))) / len(t)


@pytest.mark.parametrize("offset,bandwidth", [(1.0, 0.5), (0.5, 0.1), (2.0, 1.5), (1.0, 0.01)])
def test_matches_literal_reference(offset, bandwidth):
    src, tgt = unit_maps(4, 3, 5, seed=1), unit_maps(4, 4, 3, seed=2)
    ours = cx_directional(as_vectors(src), as_vectors(tgt), offset, bandwidth)
    assert float(ours) == pytest.approx(reference_cx(src, tgt, offset, bandwidth), abs=1e-5)


def near_duplicate_maps(seed):
    """Maps whose vectors come in near-identical groups, as flat sky or road gives real DVF grids: the
    distance to the nearest vector is ~1e-6, so most weights underflow float32."""
    g = torch.Generator().manual_seed(seed)
    centres = F.normalize(torch.randn(5, 6, generator=g), dim=1)
    vectors = centres[torch.randint(0, 5, (20,), generator=g)] + 1e-3 * torch.randn(20, 6, generator=g)
    return F.normalize(vectors, dim=1).T.reshape(6, 4, 5)


@pytest.mark.parametrize("bandwidth", [0.5, 0.01])
def test_underflowing_weights_match_literal_reference(bandwidth):
    src, tgt = near_duplicate_maps(20), near_duplicate_maps(21)
    ours = cx_directional(as_vectors(src), as_vectors(tgt), 1.0, bandwidth)
    assert float(ours) == pytest.approx(reference_cx(src, tgt, 1.0, bandwidth), abs=1e-5)


@pytest.mark.parametrize("symmetric", [False, True])
def test_inference_equals_autograd_path(symmetric):
    """In place (no autograd) and out of place (training) compute the same numbers."""
    query = near_duplicate_maps(22)
    keys = torch.stack([near_duplicate_maps(23), unit_maps(6, 4, 5, seed=24)])
    with torch.inference_mode():
        fast = contextual_similarity(query, keys, symmetric=symmetric)
    slow = contextual_similarity(query.clone().requires_grad_(True), keys, symmetric=symmetric)
    assert torch.allclose(fast, slow.detach(), atol=1e-6)


def test_range_and_self_similarity_is_the_maximum():
    query = unit_maps(10, 8, 8, seed=3)
    others = unit_maps(12, 10, 8, 8, seed=4)
    scores = contextual_similarity(query, others)
    assert ((scores >= 0) & (scores <= 1)).all()
    self_score = contextual_similarity(query, query)
    assert float(self_score) == pytest.approx(1.0, abs=1e-6)
    assert (scores < self_score).all()


@pytest.mark.parametrize("h,w", [(1, 1), (1, 7), (13, 1), (33, 65), (5, 9)])
@pytest.mark.parametrize("budget", [1, 4096, 1 << 16])
def test_chunked_equals_unchunked_for_awkward_sizes(h, w, budget):
    src = unit_maps(2, 4, h, w, seed=5)
    tgt = unit_maps(2, 4, h, w, seed=6)
    full = contextual_similarity(src, tgt, memory_budget_bytes=1 << 34)
    chunked = contextual_similarity(src, tgt, memory_budget_bytes=budget)
    assert torch.allclose(full, chunked, atol=1e-5)


@pytest.mark.slow
def test_chunked_equals_unchunked_on_the_grid_size_that_crashes_the_authors_code():
    src = unit_maps(1, 10, 79, 127, seed=5)
    tgt = unit_maps(1, 10, 79, 127, seed=6)
    full = contextual_similarity(src, tgt, symmetric=False, memory_budget_bytes=1 << 34)
    chunked = contextual_similarity(src, tgt, symmetric=False, memory_budget_bytes=3 << 20)
    assert torch.allclose(full, chunked, atol=1e-5)


@pytest.mark.parametrize("symmetric", [False, True])
def test_batch_equals_loop(symmetric):
    query = unit_maps(6, 7, 9, seed=7)
    keys = unit_maps(5, 6, 7, 9, seed=8)
    batched = contextual_similarity(query, keys, symmetric=symmetric)
    looped = torch.stack([contextual_similarity(query, k, symmetric=symmetric)[0] for k in keys])
    assert torch.allclose(batched, looped, atol=1e-6)


def test_symmetric_is_mean_of_both_directions():
    a, b = unit_maps(5, 6, 6, seed=9), unit_maps(5, 4, 7, seed=10)
    fwd = contextual_similarity(a, b, symmetric=False)
    bwd = contextual_similarity(b, a, symmetric=False)
    assert torch.allclose(contextual_similarity(a, b), (fwd + bwd) / 2, atol=1e-7)


def test_loss_has_finite_gradients_and_is_minus_log():
    a = unit_maps(1, 4, 6, 6, seed=11).requires_grad_(True)
    b = unit_maps(1, 4, 6, 6, seed=12)
    loss = cx_loss(a, b)
    assert torch.allclose(loss, -torch.log(contextual_similarity(a.detach(), b)), atol=1e-6)
    loss.sum().backward()
    assert torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_device_and_dtype(device, dtype):
    q = unit_maps(4, 5, 5, seed=13, dtype=dtype).to(device)
    k = unit_maps(3, 4, 5, 5, seed=14, dtype=dtype).to(device)
    out = contextual_similarity(q, k)
    assert out.dtype == dtype and out.device.type == device
    ref = contextual_similarity(q.double().cpu(), k.double().cpu())
    assert torch.allclose(out.double().cpu(), ref, atol=1e-5)


def test_pairwise_matrix_diagonal_is_one():
    maps = unit_maps(4, 3, 6, 6, seed=15)
    m = pairwise_matrix(maps)
    assert torch.allclose(torch.diagonal(m), torch.ones(4), atol=1e-6)
    assert torch.allclose(m, m.T, atol=1e-6)  # symmetric CX gives a symmetric matrix


def test_grid_follows_authors_downsampling():
    dense = unit_maps(1, 10, 256, 256, seed=16)
    grid = to_grid(dense, stride=4)
    assert grid.shape == (1, 10, 64, 64)
    expected = F.interpolate(dense, scale_factor=0.25, mode="bilinear", align_corners=True)
    assert torch.allclose(grid, expected, atol=1e-6)
    assert grid_size(480, 640, 4, max_side=32) == (24, 32)
    assert to_grid(dense[0], stride=4, max_side=16).shape == (10, 16, 16)


def test_global_descriptor_and_shortlist():
    dense = unit_maps(6, 10, 64, 80, seed=17)
    desc = global_descriptor(dense, cells=4)
    assert desc.shape == (6, 160)
    assert torch.allclose(desc.norm(dim=1), torch.ones(6), atol=1e-5)
    scores, idx = shortlist(desc[3], desc, k=3)
    assert int(idx[0]) == 3 and float(scores[0]) == pytest.approx(1.0, abs=1e-5)
    assert list(scores) == sorted(scores.tolist(), reverse=True)


def test_float16_stays_finite_where_the_unshifted_exponent_would_underflow():
    a, b = unit_maps(2, 6, 8, 8, seed=25), unit_maps(2, 6, 8, 8, seed=26)
    with torch.no_grad():
        half = contextual_similarity(a.half(), b.half(), bandwidth=0.05)
    assert torch.isfinite(half).all()
    assert torch.allclose(half.double(), contextual_similarity(a.double(), b.double(), bandwidth=0.05), atol=5e-3)
