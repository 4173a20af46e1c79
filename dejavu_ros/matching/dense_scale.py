"""Relative scale and shift of two views by correlating their whole DVF maps over a scale ladder.

Why beside the pyramid matcher (view_overlap.py): a RANSAC fit needs ten keypoints found again, and
between day and night, or on a site that changed, there often are not ten. The dense maps still
agree *on average* over the whole shared footprint when few single descriptors are found again, so
a search over zoom and shift that scores the mean descriptor cosine of every placement finds the
scale where the sparse search finds nothing (on zoom pairs of the overlap head's training scenes:
right within 25 % for 58 % of the pairs against the matcher's 33 %).

The model is a zoom and a shift (a camera moving along its axis, the same camera zoomed), no
rotation: the zoomed view's map, pooled into cells ``s`` times larger than the wider view's, is slid
over the wider view's map for every ``s`` of the ladder, both ways. ``margin`` says how sure the answer
is: how far the best placement's cosine lies above the best at a scale more than one step away
(the neighbouring steps of a right answer agree almost as well).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .view_overlap import BORDER_PX, ViewOverlap, overlap_from_similarity

#: zoom ladder (steps of 2^(1/6) ≈ 12 %: a neighbouring step is still within 25 % of the truth), 1 … 3.56
LADDER = tuple(2.0 ** (k / 6.0) for k in range(12))
#: cell size of the wider view, in pixels of the dense map (2 was best of 2, 4 and 8 on the tuning pairs)
CELL_PX = 2.0
#: smallest margin at which an estimate is used (`overlap --method auto`, the engine's scale search):
#: below it the estimate is a guess (unrelated views give ≈ 0.002)
MIN_MARGIN = 0.01


def _step(ladder) -> float:
    """The ladder's step in log scale (answers within 1.5 steps count as the same scale)."""
    return math.log(ladder[1] / ladder[0]) if len(ladder) > 1 else 1.0


@dataclass
class ScaleFit:
    """The best placement: ``similarity`` maps A pixels to B pixels; ``score`` is its mean cosine."""

    similarity: np.ndarray
    score: float
    margin: float


def _cells(dense: torch.Tensor, cell_px: float) -> tuple[torch.Tensor, tuple[float, float]]:
    """The map without its border (the network's padding makes borders alike in any two images),
    pooled into cells of about ``cell_px`` pixels and normalised; and the cells' size (x, y) in pixels."""
    b = int(BORDER_PX)
    inner = dense[:, b:dense.shape[1] - b, b:dense.shape[2] - b].float()
    h, w = int(inner.shape[1]), int(inner.shape[2])
    rows, cols = max(2, round(h / cell_px)), max(2, round(w / cell_px))
    cells = F.normalize(F.adaptive_avg_pool2d(inner[None], (rows, cols))[0], dim=0)
    return cells, (w / cols, h / rows)


def _correlate(big_fft: torch.Tensor, size: tuple[int, int], tmpl: torch.Tensor) -> torch.Tensor:
    """Sum over channels of the template's dot product with every placement fully inside the map
    (a "valid" correlation), through the FFT: the templates are large, where direct convolution is
    slow on the CPU (120 ms against 3 ms for a 72×52-cell template)."""
    h, w = size
    th, tw = int(tmpl.shape[1]), int(tmpl.shape[2])
    full = torch.fft.irfft2((big_fft * torch.fft.rfft2(tmpl, s=(h, w)).conj()).sum(0), s=(h, w))
    return full[:h - th + 1, :w - tw + 1]  # placements that do not wrap around


@torch.no_grad()
def scale_search(dense_a: torch.Tensor, dense_b: torch.Tensor, ladder=LADDER, cell_px: float = CELL_PX) -> ScaleFit | None:
    """The zoom and shift under which the two n×H×W maps agree best; None if the maps are too small."""
    wide_cells = {"a": _cells(dense_a, cell_px), "b": _cells(dense_b, cell_px)}
    spectra = {k: torch.fft.rfft2(c) for k, (c, _) in wide_cells.items()}
    tried = []  # (score, relative scale of B to A, similarity from the wide view to the zoomed one, wide name)
    for s in ladder:
        for wide, zoomed, relative in (("a", dense_b, s), ("b", dense_a, 1.0 / s)):
            if wide == "b" and s == 1.0:
                continue  # the same placement as the other way round
            big, (bx, by) = wide_cells[wide]
            tmpl, (tx, ty) = _cells(zoomed, cell_px * s)
            if tmpl.shape[1] > big.shape[1] or tmpl.shape[2] > big.shape[2]:
                continue
            corr = _correlate(spectra[wide], tuple(big.shape[1:]), tmpl) / float(tmpl.shape[1] * tmpl.shape[2])
            flat = int(corr.argmax())
            row, col = divmod(flat, int(corr.shape[1]))
            # zoomed pixel = B + (wide pixel − B − offset) · r, r = zoomed cell / wide cell (≈ s)
            r = math.sqrt((tx / bx) * (ty / by))
            m = np.array([[r, 0.0, BORDER_PX - r * (BORDER_PX + col * bx)],
                          [0.0, r, BORDER_PX - r * (BORDER_PX + row * by)]])
            tried.append((float(corr.reshape(-1)[flat]), relative, m, wide))
    if not tried:
        return None
    tried.sort(key=lambda t: -t[0])
    score, relative, m, wide = tried[0]
    others = [t[0] for t in tried[1:] if abs(math.log(t[1] / relative)) > 1.5 * _step(ladder)]
    margin = score - max(others) if others else 0.0
    if wide == "b":  # m maps B → A
        m = np.vstack([m, [0.0, 0.0, 1.0]])
        m = np.linalg.inv(m)[:2]
    return ScaleFit(m, score, margin)


def dense_views(rgb_a: np.ndarray, rgb_b: np.ndarray, extractor, ladder=LADDER,
                dense: tuple[torch.Tensor, torch.Tensor] | None = None) -> ViewOverlap | None:
    """Overlap and scale of two views from :func:`scale_search` over their DVF maps (``dense``, when
    the caller has them already)."""
    dense_a, dense_b = dense if dense is not None else (extractor.extract(rgb_a), extractor.extract(rgb_b))
    fit = scale_search(dense_a, dense_b, ladder)
    if fit is None:
        return None
    out = overlap_from_similarity(fit.similarity, (rgb_a.shape[1], rgb_a.shape[0]), (rgb_b.shape[1], rgb_b.shape[0]))
    out.method = "dense"
    out.margin = fit.margin
    return out



def query_scale(query_dense: torch.Tensor, keyframe_dense: torch.Tensor, ladder=LADDER) -> float | None:
    """The scale to search a query at for a keyframe it shows nearer or farther: 1/z when the query
    shows things z× larger than the keyframe (both maps at the same image size); None when z is
    within one ladder step of 1 or the search is unsure (margin below :data:`MIN_MARGIN`)."""
    fit = scale_search(keyframe_dense, query_dense, ladder)
    if fit is None or fit.margin < MIN_MARGIN:
        return None
    z = math.sqrt(abs(float(np.linalg.det(fit.similarity[:, :2]))))
    step = _step(ladder)
    if abs(math.log(z)) < 1.5 * step:
        return None
    return float(math.exp(round(-math.log(z) / step) * step))  # on the ladder's steps: one cached map per step
