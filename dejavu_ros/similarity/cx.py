"""Contextual similarity (CX) between dense descriptor maps, as the Deja-Vu authors compute it.

For a source map S (vectors s_j) and a target map T (vectors t_i):

    d_ij  = ||t_i - s_j||²                       squared L2, clamped at 0
    d̃_ij  = d_ij / (min_i' d_i'j + 1e-5)         normalised per source over the targets
    w_ij  = exp((offset - d̃_ij) / bandwidth)
    CX_ij = w_ij / Σ_i' w_i'j
    CX(S, T) = mean_i max_j CX_ij  ∈ [0, 1]

Everything a source column needs (its min and its sum over targets) lives in that column, so
splitting the sources into chunks and keeping a running max over them is exact. Chunk sizes come
from a byte budget; any grid size works, one source column at a time if it must.

With n ≈ 10 channels the matmul is cheap and the passes over the distance matrix are the cost, so
the inference path makes few of them: the distances come out of one matmul of augmented vectors,
every pass works in place in one buffer, and the symmetric CX of a pair that fits a chunk takes
both directions from one distance matrix (benchmarks/bench_cx_authors.py).
"""
from __future__ import annotations

import torch

EPS = 1e-5
#: exponents are floored here before exp: e^-87 is about float32's smallest normal number, and an exp
#: that underflows takes the slow path of the vector math library (7x slower on real descriptor maps)
EXP_FLOOR = -87.0
#: below this bandwidth the largest exponent (≥ −1/h) could reach the floor: exponents are shifted first
MIN_UNSHIFTED_BANDWIDTH = 1.0 / 40.0
#: float32 temporaries alive per distance-matrix element (distances, normalised, CX, autograd copy)
_LIVE_COPIES = 4
DEFAULT_BUDGET = 256 << 20
#: largest chunk worked on at once, whatever the budget: chunks that stay in the CPU caches ran
#: 9× faster than one big batch (20 pairs of 24×32 grids: 36 ms vs 333 ms, one thread); 8 MB was
#: faster than 4, 16 or 32 MB on the engine's grids
CHUNK_BYTES = 8 << 20


def as_vectors(maps: torch.Tensor) -> torch.Tensor:
    """B×n×h×w maps (or a single n×h×w map) → B×(h·w)×n vectors."""
    if maps.dim() == 3:
        maps = maps[None]
    if maps.dim() != 4:
        raise ValueError(f"expected B×n×h×w descriptor maps, got shape {tuple(maps.shape)}")
    b, n = maps.shape[:2]
    return maps.reshape(b, n, -1).transpose(1, 2)


def _augmented(source: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(s', t') with s'_j · t'_i = ||s_j||² + ||t_i||² − 2 s_j·t_i: the whole distance matrix comes out
    of one matmul, with no broadcast additions after it (n is ~10: the matmul is cheap, passes are not)."""
    s_sq = (source * source).sum(-1, keepdim=True)
    t_sq = (target * target).sum(-1, keepdim=True)
    s_aug = torch.cat([source, s_sq, torch.ones_like(s_sq)], dim=-1)
    t_aug = torch.cat([-2.0 * target, torch.ones_like(t_sq), t_sq], dim=-1)
    return s_aug, t_aug


def _best_cx(dist: torch.Tensor, targets_dim: int, bandwidth: float, out: torch.Tensor | None) -> torch.Tensor:
    """max over sources of CX_ij for every target, from clamped distances B×a×b whose targets lie along
    ``targets_dim`` (2: rows are sources; 1: columns are).

    The weights are a softmax of scale·d over the targets, scale = −1 / (h (d_min + ε)): the largest
    exponent, scale·d_min, lies in (−1/h, 0], so no shift is needed unless h is tiny (or the type is
    float16, whose range ends near e^-17). Exponents are floored at :data:`EXP_FLOOR`: a weight under
    e^-87 becomes e^-87, at most e^-47 of the largest (4e-21).
    ``out``: a buffer of dist's size for the weights (``dist`` itself: in place); None under autograd."""
    sources_dim = 3 - targets_dim
    d_min = dist.amin(targets_dim, keepdim=True)
    scale = (-1.0 / bandwidth) / (d_min + EPS)
    unshifted = bandwidth >= MIN_UNSHIFTED_BANDWIDTH and dist.dtype != torch.float16
    if out is None:
        exponent = dist * scale if unshifted else (dist - d_min) * scale
        w = torch.exp(exponent.clamp(min=EXP_FLOOR))
        return (w / w.sum(targets_dim, keepdim=True)).amax(sources_dim)
    if unshifted:  # inference: every pass reuses one buffer
        w = torch.mul(dist, scale, out=out)
    else:
        w = torch.sub(dist, d_min, out=out).mul_(scale)
    w = w.clamp_(min=EXP_FLOOR).exp_()
    return w.mul_(w.sum(targets_dim, keepdim=True).reciprocal_()).amax(sources_dim)


def _in_place(*tensors: torch.Tensor) -> bool:
    """In-place passes are safe unless autograd has to see the intermediate values."""
    return not (torch.is_grad_enabled() and any(t.requires_grad for t in tensors))


def _prepared(source: torch.Tensor, target: torch.Tensor) -> tuple[int, torch.Tensor, torch.Tensor, bool]:
    """(batch, augmented sources B×Ns×(n+2), augmented targets transposed B×(n+2)×Nt, in place?)."""
    batch = max(source.shape[0], target.shape[0])
    s_aug, t_aug = (v.expand(batch, -1, -1) for v in _augmented(source, target))  # augment, then broadcast
    return batch, s_aug, t_aug.transpose(1, 2), _in_place(source, target)


def _distances(s_aug: torch.Tensor, t_aug_t: torch.Tensor, buffer: torch.Tensor | None) -> torch.Tensor:
    """Clamped squared distances, written into ``buffer`` when given: one allocation per call instead
    of one per chunk (fresh multi-MB blocks cost a page fault per 4 kB: a quarter of the time)."""
    if buffer is None:
        return torch.bmm(s_aug, t_aug_t).clamp_(min=0.0)
    shape = (s_aug.shape[0], s_aug.shape[1], t_aug_t.shape[2])
    return torch.bmm(s_aug, t_aug_t, out=_view(buffer, shape)).clamp_(min=0.0)


def _buffer(like: torch.Tensor, numel: int, in_place: bool) -> torch.Tensor | None:
    return torch.empty(numel, dtype=like.dtype, device=like.device) if in_place else None


def _view(buffer: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """The front of a flat buffer as a tensor of ``shape`` (the last block of a batch may be smaller)."""
    return buffer[:shape[0] * shape[1] * shape[2]].view(shape)


def _chunk_elements(source: torch.Tensor, memory_budget_bytes: int, in_place: bool) -> int:
    """Distance elements worked on at once: in place, the distance buffers are the only large
    temporaries; under autograd every pass keeps its own copy."""
    chunk_bytes = min(memory_budget_bytes, CHUNK_BYTES) if source.device.type == "cpu" else memory_budget_bytes
    return max(1, chunk_bytes // ((1 if in_place else _LIVE_COPIES) * source.element_size()))


def cx_directional(source: torch.Tensor, target: torch.Tensor, offset: float = 1.0, bandwidth: float = 0.5,
                   memory_budget_bytes: int = DEFAULT_BUDGET) -> torch.Tensor:
    """CX(S, T) for B pairs of vector sets: source B×Ns×n, target B×Nt×n → B similarities.

    Either batch dimension may be 1 and is broadcast (one query against many keyframes).
    The distance matrix is laid out sources × targets so that every per-source step (the min
    and the normalisation over targets) runs along contiguous memory. The normalised weights
    exp((offset − d̃)/h) / Σ_i exp((offset − d̃)/h) equal a softmax of −d̃/h over the targets (the
    offset scales numerator and denominator alike), which is how they are computed here.
    """
    batch, s_aug, t_aug_t, in_place = _prepared(source, target)
    n_src, n_tgt = s_aug.shape[1], t_aug_t.shape[2]
    elements = _chunk_elements(source, memory_budget_bytes, in_place)
    rows = max(1, elements // n_tgt)  # source rows that fit for one pair
    pairs = max(1, rows // n_src) if rows >= n_src else 1
    rows = min(rows, n_src)
    buffer = _buffer(s_aug, min(batch, pairs) * rows * n_tgt, in_place)
    out = []
    for b0 in range(0, batch, pairs):
        b1 = min(batch, b0 + pairs)
        best = None
        for j0 in range(0, n_src, rows):
            dist = _distances(s_aug[b0:b1, j0:j0 + rows], t_aug_t[b0:b1], buffer)  # B×rows×Nt
            chunk_best = _best_cx(dist, 2, bandwidth, dist if in_place else None)  # best source of this chunk, every target
            best = chunk_best if best is None else torch.maximum(best, chunk_best)
        out.append(best.mean(dim=1))
    return torch.cat(out)


def _cx_both_directions(source: torch.Tensor, target: torch.Tensor, bandwidth: float,
                        memory_budget_bytes: int) -> torch.Tensor | None:
    """(CX(S, T) + CX(T, S)) / 2 from one distance matrix per pair, when whole pairs fit a chunk
    (the engine's grids); None when they do not (each direction is then chunked on its own)."""
    n_src, n_tgt = source.shape[1], target.shape[1]
    pairs = _chunk_elements(source, memory_budget_bytes, _in_place(source, target)) // (2 * n_src * n_tgt)
    if pairs < 1:  # a pair's distances and their copy do not fit a chunk
        return None
    batch, s_aug, t_aug_t, in_place = _prepared(source, target)
    pairs = min(pairs, batch)
    buffer, copy = _buffer(s_aug, pairs * n_src * n_tgt, in_place), _buffer(s_aug, pairs * n_src * n_tgt, in_place)
    out = []
    for b0 in range(0, batch, pairs):
        b1 = min(batch, b0 + pairs)
        dist = _distances(s_aug[b0:b1], t_aug_t[b0:b1], buffer)  # B×Ns×Nt
        # T's vectors as the sources first: its weights go to the second buffer, dist stays intact
        backward = _best_cx(dist, 1, bandwidth, _view(copy, dist.shape) if in_place else None)
        forward = _best_cx(dist, 2, bandwidth, dist if in_place else None)
        out.append(0.5 * (forward.mean(dim=1) + backward.mean(dim=1)))
    return torch.cat(out)


def contextual_similarity(source: torch.Tensor, target: torch.Tensor, offset: float = 1.0,
                          bandwidth: float = 0.5, symmetric: bool = True,
                          memory_budget_bytes: int = DEFAULT_BUDGET) -> torch.Tensor:
    """CX between descriptor maps: source and target are n×h×w or B×n×h×w (batch 1 broadcasts).

    Typical use: ``contextual_similarity(query_grid, keyframe_grids)`` → one score per keyframe.
    ``symmetric`` averages CX(S, T) and CX(T, S) as the authors' demo does.
    """
    src, tgt = as_vectors(source), as_vectors(target)
    if src.shape[-1] != tgt.shape[-1]:
        raise ValueError(f"descriptor sizes differ: {src.shape[-1]} vs {tgt.shape[-1]}")
    if not symmetric:
        return cx_directional(src, tgt, offset, bandwidth, memory_budget_bytes)
    both = _cx_both_directions(src, tgt, bandwidth, memory_budget_bytes)
    if both is not None:
        return both
    return 0.5 * (cx_directional(src, tgt, offset, bandwidth, memory_budget_bytes)
                  + cx_directional(tgt, src, offset, bandwidth, memory_budget_bytes))


def cx_loss(source: torch.Tensor, target: torch.Tensor, offset: float = 1.0, bandwidth: float = 0.5,
            symmetric: bool = True, memory_budget_bytes: int = DEFAULT_BUDGET) -> torch.Tensor:
    """−log CX per pair (differentiable), the training form of the similarity."""
    cx = contextual_similarity(source, target, offset, bandwidth, symmetric, memory_budget_bytes)
    return -torch.log(cx.clamp_min(1e-12))


def pairwise_matrix(maps: torch.Tensor, offset: float = 1.0, bandwidth: float = 0.5, symmetric: bool = True,
                    memory_budget_bytes: int = DEFAULT_BUDGET) -> torch.Tensor:
    """N×N matrix M[i, j] = CX(source=map i, target=map j) (the authors' demo layout)."""
    rows = [contextual_similarity(maps[i], maps, offset, bandwidth, symmetric, memory_budget_bytes)
            for i in range(maps.shape[0])]
    return torch.stack(rows)
