"""Direction (b): the keyframe's stored corners searched over every pixel of the query's dense map.

Why: at night the intensity corners of the query are light sources, not the daylight corners the
map stored, so corner-to-corner matching has little to pair. Searching the whole query map needs
no query corners at all.

Search, per keyframe corner: a coarse similarity map with one cell per ``dense_stride``² pixels,
either the per-cell maximum of the full-resolution similarity (``dense_coarse = exact``) or the
similarity to the pooled query map (``pooled``: cheaper, but with low-dimensional descriptors
that vary within a cell the true cell often does not rank among the best, and a wrong pixel is
found instead); the ``dense_peaks`` best cells at least ``dense_exclusion_px`` apart are each
refined in a full-resolution window, with a parabolic sub-pixel step. The ratio test compares the
best refined peak with the best other peak outside the exclusion radius. Then reciprocity (the
query descriptor at the found pixel must pick that corner back among all keyframe corners) and
the stability test (so must the descriptors one pixel away, within ``stability_px``).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .config import MatchingConfig
from .filters import distance_ratio, stability_mask
from .matches import Matches, MatchingError, as_unit_descriptors, as_xy, check_dense, unit_distance
from .sampling import sample_descriptors, sample_shifted

#: Peak memory of one chunk of the coarse similarity search.
SEARCH_BUDGET_BYTES = 64 << 20


def match_dense(keyframe_xy, keyframe_desc, query_dense: torch.Tensor,
                cfg: MatchingConfig | None = None, layout: torch.Tensor | None = None) -> Matches:
    """Match keyframe corners (K, 2) with descriptors (K, n) into the query map n×H×W.

    Returned ``query_xy`` are sub-pixel positions in the query map's pixels; ``query_idx`` is -1.
    ``layout``: the map's :func:`search_layout`, when the caller searches it for several keyframes.
    """
    cfg = cfg or MatchingConfig()
    dense = unit_map(check_dense(query_dense, "query_dense"))
    if dense is not query_dense:
        layout = None  # made for the map before it was normalised
    kxy = as_xy(keyframe_xy, "keyframe_xy")
    kd = as_unit_descriptors(keyframe_desc, "keyframe_desc", dense.device, dim=dense.shape[0])
    if len(kd) != len(kxy):
        raise MatchingError(f"match_dense: {len(kxy)} keyframe corners but {len(kd)} descriptors")
    counts = {"map_corners": len(kxy)}
    if len(kxy) == 0:
        return Matches.empty("dense", counts | {"ratio": 0})

    found_xy, best_sim, second_sim = dense_search(kd, dense, cfg, layout)
    ratio = distance_ratio(best_sim, second_sim)
    keep = torch.isfinite(best_sim) & (ratio <= cfg.ratio)
    counts["ratio"] = int(keep.sum())
    rows = torch.nonzero(keep).flatten()

    if cfg.reciprocity and len(rows):
        back = (sample_descriptors(dense, found_xy[rows]) @ kd.t()).argmax(dim=1)
        rows = rows[back == rows]
        counts["reciprocity"] = len(rows)
    if cfg.stability and len(rows):
        kxy_t = torch.as_tensor(kxy, device=dense.device)
        stable = stability_mask(sample_shifted(dense, found_xy[rows]), kd, kxy_t, rows, cfg.stability_px)
        rows = rows[stable]
        counts["stability"] = len(rows)

    r = rows.cpu().numpy()
    return Matches(query_xy=found_xy[rows].cpu().numpy().astype("float32"), map_xy=kxy[r],
                   map_idx=r.astype("int64"), query_idx=np.full(len(r), -1, dtype=np.int64),
                   distance=unit_distance(best_sim[rows]).cpu().numpy().astype("float32"),
                   ratio=ratio[rows].cpu().numpy().astype("float32"), direction="dense", counts=counts)


def unit_map(dense: torch.Tensor) -> torch.Tensor:
    """``dense`` with unit descriptors; a map that already is (DVF's default output) is not copied."""
    n = dense.shape[0]
    probe = dense.reshape(n, -1)[:, ::97]
    if torch.allclose(probe.norm(dim=0), torch.ones(1, device=dense.device), atol=1e-3):
        return dense
    return F.normalize(dense, dim=0)


def _coarse_grid(dense: torch.Tensor, cfg: MatchingConfig) -> tuple[int, bool]:
    """(stride, exact) of the coarse search over ``dense``: the stride capped by the map's size; at
    stride 1 every search is exact."""
    _, h, w = dense.shape
    stride = max(1, min(int(cfg.dense_stride), h, w))
    return stride, cfg.dense_coarse == "exact" or stride == 1


def search_layout(dense: torch.Tensor, cfg: MatchingConfig) -> torch.Tensor | None:
    """What the exact coarse search regroups the unit query map into (:func:`cell_layout`). It depends
    on the map alone, so a frame makes it once for all the keyframes it verifies (1.4 ms a keyframe
    at 320×240). None for the pooled search, and for a map :func:`match_dense` would convert or
    normalise first (it then makes its own from the map it searches)."""
    stride, exact = _coarse_grid(dense, cfg)
    if not exact or dense.dtype != torch.float32 or unit_map(dense) is not dense:
        return None
    return cell_layout(dense, stride)


@torch.no_grad()
def dense_search(desc: torch.Tensor, dense: torch.Tensor, cfg: MatchingConfig, layout: torch.Tensor | None = None):
    """Best pixel of unit ``desc`` (K, n) in unit map ``dense`` (n, H, W), coarse-to-fine (no gradients);
    ``layout``: the map's :func:`search_layout` when the caller has it.

    Returns found positions (K, 2) float32 (sub-pixel), the best similarity (K,) and the best
    similarity of another peak outside the exclusion radius (K,; -inf when there is none).
    """
    n, h, w = dense.shape
    stride, exact = _coarse_grid(dense, cfg)
    ch, cw = -(-h // stride), -(-w // stride)
    cx = _cell_centres(cw, stride, w, dense.device)
    cy = _cell_centres(ch, stride, h, dense.device)
    centres = torch.stack([cx.repeat(ch), cy.repeat_interleave(cw)], dim=1)  # (ch*cw, 2)
    pixels = dense.reshape(n, -1)
    coarse = None if exact else F.normalize(
        F.avg_pool2d(dense[None], stride, stride, ceil_mode=True)[0], dim=0).reshape(n, -1)
    if exact and layout is not None and (tuple(layout.shape) != (ch, stride * stride, cw, n)
                                         or layout.dtype != dense.dtype or layout.device != dense.device):
        raise MatchingError(f"dense search: a cell layout of shape {tuple(layout.shape)} ({layout.dtype}) does not "
                            f"fit a {n}×{h}×{w} {dense.dtype} map at stride {stride}")
    if exact and layout is None:
        layout = cell_layout(dense, stride)
    peaks = max(2, int(cfg.dense_peaks))
    # Exact cell maxima: the window covers the whole cell (+1 px for the parabola); pooled cells:
    # the cell and half of each neighbour, where a blurred peak may really sit.
    radius = stride // 2 + 1 if exact else stride
    side = 2 * radius + 1
    per_row = 4 * max(2 * ch * cw, (stride * stride * cw) if exact else 0)
    per_refine = 4 * peaks * side * side * (n + 1)
    chunk = max(1, min(SEARCH_BUDGET_BYTES // per_row, SEARCH_BUDGET_BYTES // per_refine))

    out_xy, out_best, out_second = [], [], []
    for start in range(0, len(desc), chunk):
        d = desc[start:start + chunk]
        sim = _cell_maxima(d, layout) if exact else d @ coarse
        peak_xy = centres[_coarse_peaks(sim, (ch, cw), stride, peaks, cfg.dense_exclusion_px)]
        xy, sim = _refine(d, pixels, peak_xy, radius=radius, height=h, width=w)  # (c, T, 2), (c, T)
        best_t = sim.argmax(dim=1)
        rows = torch.arange(len(d), device=d.device)
        best_xy, best_sim = xy[rows, best_t], sim[rows, best_t]
        far = torch.linalg.norm(xy - best_xy[:, None], dim=2) > cfg.dense_exclusion_px
        second = torch.where(far, sim, torch.full_like(sim, float("-inf"))).max(dim=1).values
        out_xy.append(best_xy)
        out_best.append(best_sim)
        out_second.append(second)
    return torch.cat(out_xy), torch.cat(out_best), torch.cat(out_second)


def cell_layout(dense: torch.Tensor, stride: int) -> torch.Tensor:
    """The map's pixels regrouped for :func:`_cell_maxima`: (ch, stride², cw, n), the pixels of cell
    row ``r`` ordered by their offset within the cell, then by cell. The map is first padded to whole
    cells by repeating its last row and column; a repeated pixel lies in the cell it repeats, so no
    cell maximum changes."""
    n, h, w = dense.shape
    pad_h, pad_w = -h % stride, -w % stride
    if pad_h or pad_w:
        dense = F.pad(dense[None], (0, pad_w, 0, pad_h), mode="replicate")[0]
    ch, cw = dense.shape[1] // stride, dense.shape[2] // stride
    cells = dense.permute(1, 2, 0).reshape(ch, stride, cw, stride, n)  # (cell row, dy, cell, dx, n)
    return cells.permute(0, 1, 3, 2, 4).reshape(ch, stride * stride, cw, n).contiguous()


def _cell_maxima(desc: torch.Tensor, layout: torch.Tensor) -> torch.Tensor:
    """(c, ch*cw) maximum full-resolution similarity in each stride×stride cell (``layout``: the
    query map's :func:`cell_layout`).

    One row of cells at a time: a matmul gives the band's similarities pixel-major, (stride², cw·c),
    so the cell maximum is a max over the leading dimension — one vectorised pass over memory the
    matmul has just written (a max over each cell's small strided rows and columns took 3× longer).
    """
    ch, cells, cw, n = layout.shape
    desc_t = desc.t().contiguous()
    band = torch.empty((cells * cw, len(desc)), dtype=desc.dtype, device=desc.device)
    out = torch.empty((ch, cw, len(desc)), dtype=desc.dtype, device=desc.device)
    for row in range(ch):
        torch.mm(layout[row].view(cells * cw, n), desc_t, out=band)
        torch.amax(band.view(cells, cw * len(desc)), dim=0, out=out[row].view(-1))
    return out.permute(2, 0, 1).reshape(len(desc), ch * cw).contiguous()  # one row per corner: _coarse_peaks scans rows


def _row_max(sim: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(max, index of the first max) of every row; on the CPU through NumPy's argmax, which was 10×
    faster than torch's on these (corners × cells) tables and returns the first maximum, as torch does."""
    if sim.device.type != "cpu" or sim.dtype not in (torch.float32, torch.float64) or sim.requires_grad:
        return sim.max(dim=1)  # NumPy has no bf16 and no autograd
    idx = torch.from_numpy(sim.numpy().argmax(axis=1))
    return sim.gather(1, idx[:, None])[:, 0], idx


def _cell_centres(cells: int, stride: int, size: int, device) -> torch.Tensor:
    """Pixel coordinate of each pooling cell's centre (the last cell may be partial)."""
    start = torch.arange(cells, device=device, dtype=torch.float32) * stride
    end = torch.clamp(start + stride, max=size) - 1
    return (start + end) / 2


def _coarse_peaks(sim: torch.Tensor, grid: tuple[int, int], stride: int, peaks: int,
                  exclusion: float) -> torch.Tensor:
    """(c, T) indices of the T best cells per row of ``sim`` (c, ch*cw), each outside the others'
    exclusion radius. Overwrites ``sim``. A row that runs out of cells repeats its last peak.
    """
    ch, cw = grid
    reach = int(exclusion // stride)
    offs = torch.arange(-reach, reach + 1, device=sim.device)
    oy, ox = torch.meshgrid(offs, offs, indexing="ij")
    disc = (ox * stride) ** 2 + (oy * stride) ** 2 <= exclusion ** 2
    ox, oy = ox[disc], oy[disc]  # cell offsets whose centres lie within the exclusion radius
    found = []
    for t in range(peaks):
        value, idx = _row_max(sim)
        if t > 0:
            idx = torch.where(torch.isfinite(value), idx, found[-1])
        found.append(idx)
        if t + 1 < peaks:
            x = (idx % cw)[:, None] + ox[None]
            y = (idx // cw)[:, None] + oy[None]
            inside = (x >= 0) & (x < cw) & (y >= 0) & (y < ch)
            sim.scatter_(1, torch.where(inside, y * cw + x, idx[:, None]), float("-inf"))
    return torch.stack(found, dim=1)


def _refine(desc: torch.Tensor, pixels: torch.Tensor, peak_xy: torch.Tensor, radius: int, height: int,
            width: int):
    """Best full-resolution pixel within ``radius`` of each coarse peak, with a sub-pixel step."""
    c, t, _ = peak_xy.shape
    side = 2 * radius + 1
    offs = torch.arange(-radius, radius + 1, device=desc.device)
    oy, ox = torch.meshgrid(offs, offs, indexing="ij")
    centre = torch.round(peak_xy).long()
    px = torch.clamp(centre[..., 0:1] + ox.reshape(1, 1, -1), 0, width - 1)  # (c, T, side²)
    py = torch.clamp(centre[..., 1:2] + oy.reshape(1, 1, -1), 0, height - 1)
    sim = torch.einsum("nctw,cn->ctw", pixels[:, py * width + px], desc)
    best, wi = sim.max(dim=2)  # (c, T)
    ix, iy = wi % side, wi // side

    def step(lo_ok, hi_ok, lo_idx, hi_idx):
        lo = sim.gather(2, torch.clamp(lo_idx, 0, side * side - 1)[..., None])[..., 0]
        hi = sim.gather(2, torch.clamp(hi_idx, 0, side * side - 1)[..., None])[..., 0]
        denom = lo - 2 * best + hi
        safe = torch.where(denom < 0, denom, -torch.ones_like(denom))  # a maximum has denom < 0
        delta = torch.where(denom < 0, 0.5 * (lo - hi) / safe, torch.zeros_like(denom))
        return torch.where(lo_ok & hi_ok, torch.clamp(delta, -0.5, 0.5), torch.zeros_like(delta))

    dx = step(ix > 0, ix < side - 1, wi - 1, wi + 1)
    dy = step(iy > 0, iy < side - 1, wi - side, wi + side)
    x = px.gather(2, wi[..., None])[..., 0].float() + dx
    y = py.gather(2, wi[..., None])[..., 0].float() + dy
    xy = torch.stack([torch.clamp(x, 0, width - 1), torch.clamp(y, 0, height - 1)], dim=2)
    return xy, best
