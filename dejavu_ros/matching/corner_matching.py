"""Direction (a), as in the paper: query corners against keyframe corners."""
from __future__ import annotations

import torch

from .config import MatchingConfig
from .filters import distance_ratio, mutual_mask, nearest_two, stability_mask
from .matches import Matches, MatchingError, as_unit_descriptors, as_xy, unit_distance


def match_corners(query_xy, query_desc, map_xy, map_desc, cfg: MatchingConfig | None = None,
                  query_shifted: torch.Tensor | None = None) -> Matches:
    """Mutual nearest neighbours + ratio test (+ stability test) between two corner sets.

    ``query_shifted`` (4, Kq, n) are the query descriptors one pixel off each corner (see
    :func:`~dejavu_ros.matching.sampling.sample_shifted`); the stability test runs when
    ``cfg.stability`` is on and they are given. Only the query side is nudged because only the
    query's dense map exists at match time (a keyframe keeps descriptors at its corners only).
    """
    cfg = cfg or MatchingConfig()
    qxy, mxy = as_xy(query_xy, "query_xy"), as_xy(map_xy, "map_xy")
    device = query_desc.device if isinstance(query_desc, torch.Tensor) else "cpu"
    qd = as_unit_descriptors(query_desc, "query_desc", device)
    md = as_unit_descriptors(map_desc, "map_desc", device, dim=qd.shape[1] if len(qd) else None)
    if len(qd) != len(qxy) or len(md) != len(mxy):
        raise MatchingError(f"match_corners: {len(qxy)} query corners but {len(qd)} descriptors, "
                            f"{len(mxy)} keyframe corners but {len(md)} descriptors")
    counts = {"query_corners": len(qxy), "map_corners": len(mxy)}
    if len(qd) == 0 or len(md) == 0:
        return Matches.empty("corners", counts | {"mutual": 0, "ratio": 0})

    sim = qd @ md.t()
    best, best_sim, second_sim = nearest_two(sim)
    ratio = distance_ratio(best_sim, second_sim)
    keep = mutual_mask(sim, best)
    counts["mutual"] = int(keep.sum())
    keep &= ratio <= cfg.ratio
    counts["ratio"] = int(keep.sum())

    rows = torch.nonzero(keep).flatten()
    if cfg.stability and query_shifted is not None and len(rows):
        shifted = torch.as_tensor(query_shifted, dtype=torch.float32, device=device)
        if shifted.ndim != 3 or shifted.shape[1:] != qd.shape:
            raise MatchingError(f"query_shifted: expected shape (S, {len(qd)}, {qd.shape[1]}), "
                                f"got {tuple(shifted.shape)}")
        mxy_t = torch.as_tensor(mxy, device=device)
        stable = stability_mask(shifted[:, rows], md, mxy_t, best[rows], cfg.stability_px)
        rows = rows[stable]
        counts["stability"] = len(rows)

    r = rows.cpu().numpy()
    b = best[rows].cpu().numpy()
    return Matches(query_xy=qxy[r], map_xy=mxy[b], map_idx=b.astype("int64"), query_idx=r.astype("int64"),
                   distance=unit_distance(best_sim[rows]).cpu().numpy().astype("float32"),
                   ratio=ratio[rows].cpu().numpy().astype("float32"), direction="corners", counts=counts)
