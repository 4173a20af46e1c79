"""Overlap and relative-scale accuracy on synthetic pairs of held-out images (exact ground truth).

A pair is a 4:3 view A of a frame and a zoom B inside it by a factor s drawn log-uniformly from
[1, ``max_zoom``]; half the pairs are swapped (scale 1/s), so both directions are measured. On the
fixed webcams B comes from another frame of the same camera (day ↔ night), where the same point is at
the same pixel; elsewhere from the same frame. A scale counts as right within ``tolerance`` (25 %:
the estimate lies within [s/1.25, 1.25·s]); NSO errors are absolute differences of the fractions.

The sources are the data the overlap head never trains on (training/overlap_head.py): TILDE's
hold-out webcam, OxBlue from the hold-out day on, TUM, GRIEF Michigan and the demo street.
"""
from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..training.overlap_head import OverlapTrainConfig, cut, random_view, rect_overlaps
from ..training.keypoint_head import mean_grey


@dataclass
class OverlapPair:
    source: str
    image_a: np.ndarray
    image_b: np.ndarray
    overlap_ab: float
    overlap_ba: float
    scale: float


def held_out_scenes(data: Path, cfg: OverlapTrainConfig | None = None, frames: int = 6) -> dict[str, list]:
    """Per source, a list of frame groups (frames of one fixed camera share a pixel frame), as loaders."""
    from ..io.images import read_rgb

    cfg = cfg or OverlapTrainConfig()
    out: dict[str, list] = {}
    tilde = data / "tilde_webcam"
    if (tilde / "manifest.csv").is_file():
        with (tilde / "manifest.csv").open(newline="") as fh:
            rows = [tilde / r["file"] for r in csv.DictReader(fh) if r["scene"] in cfg.holdout]
        ranked = sorted(rows, key=mean_grey)
        picks = np.linspace(0, len(ranked) - 1, min(frames, len(ranked))).round().astype(int)
        out["tilde_holdout"] = [[(lambda p=ranked[i]: read_rgb(p)) for i in sorted(set(picks))]]
    oxblue = data / "oxblue_webcam"
    if (oxblue / "index.csv").is_file():
        with (oxblue / "index.csv").open(newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if r["utc"][:10] >= cfg.holdout_from]
        picks = np.linspace(0, len(rows) - 1, min(frames, len(rows))).round().astype(int)
        out["oxblue_holdout"] = [[(lambda p=oxblue / rows[i]["path"]: read_rgb(p)) for i in sorted(set(picks))]]
    tum = sorted((data / "tum_fr3_sequence").glob("*.png"))
    if tum:
        out["tum"] = [[lambda p=p: read_rgb(p)] for p in tum[:: max(1, len(tum) // frames)][:frames]]
    michigan = sorted((data / "grief_seasons" / "michigan_monthly" / "images").glob("*.jpg"))
    if michigan:
        out["grief_michigan"] = [[lambda p=p: read_rgb(p)] for p in michigan[:: max(1, len(michigan) // frames)][:frames]]
    out["demo_street"] = [_demo_frames()]
    return out


def _demo_frames() -> list:
    from ..demo.world import make_street, render

    street = make_street(60.0, 7)
    return [lambda c=c: render(street, 30.0, c, np.random.default_rng(1)) for c in ("day", "night")]


def zoom_pairs(scenes: dict[str, list], per_source: int, rng: np.random.Generator, max_zoom: float = 3.0,
               width: int = 320) -> list[OverlapPair]:
    """``per_source`` pairs from each source (see the module docstring)."""
    pairs = []
    for source, groups in scenes.items():
        for i in range(per_source):
            group = groups[i % len(groups)]
            first = group[rng.integers(0, len(group))]()
            second = group[rng.integers(0, len(group))]() if len(group) > 1 else first
            h, w = first.shape[:2]
            view_a = random_view(w, h, rng, 0.75)
            zoom = float(np.exp(rng.uniform(0.0, np.log(max_zoom))))
            view_b = random_view(w, h, rng, 0.75, inside=view_a, zoom=zoom)
            a, b = cut(first, view_a, width), cut(second, view_b, width)
            if rng.random() < 0.5:
                a, b, view_a, view_b = b, a, view_b, view_a
            ab, ba, scale = rect_overlaps(view_a, view_b)
            pairs.append(OverlapPair(source, a, b, float(ab), float(ba), float(scale)))
    return pairs


def score(pairs: list[OverlapPair], estimate, tolerance: float = 0.25) -> dict:
    """Fraction of pairs whose scale is within ``tolerance``, NSO errors, ms per pair and the fraction
    answered (a scale given) for ``estimate`` (a function (A, B) → ViewOverlap), overall and per source."""
    rows = []
    for p in pairs:
        t0 = time.perf_counter()
        r = estimate(p.image_a, p.image_b)
        ms = (time.perf_counter() - t0) * 1e3
        ok = bool(np.isfinite(r.scale) and abs(np.log(r.scale / p.scale)) <= np.log(1.0 + tolerance))
        rows.append((p.source, ok, abs(r.overlap_ab - p.overlap_ab), abs(r.overlap_ba - p.overlap_ba), ms, r.method,
                     bool(np.isfinite(r.scale))))

    def summary(sel):
        if not sel:
            return {}
        return {"pairs": len(sel), "scale_within": round(float(np.mean([s[1] for s in sel])), 3),
                "nso_error_median": round(float(np.median([max(s[2], s[3]) for s in sel])), 3),
                "nso_error_mean": round(float(np.mean([(s[2] + s[3]) / 2 for s in sel])), 3),
                "ms_median": round(float(np.median([s[4] for s in sel])), 1),
                "by_matches": round(float(np.mean([s[5] == "matches" for s in sel])), 3),
                "answered": round(float(np.mean([s[6] for s in sel])), 3)}

    out = summary(rows)
    out["per_source"] = {src: summary([r for r in rows if r[0] == src]) for src in sorted({r[0] for r in rows})}
    return out
