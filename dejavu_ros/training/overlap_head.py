"""Training of the overlap head (``features/overlap_head.py``) on crops with exact overlap and scale.

A crop of a frame is a view whose footprint on the scene is known: two crops of the same frame — or
of two frames of a fixed webcam, day and night, where the same point sits at the same pixel — overlap
by exactly the intersection of their rectangles, and the smaller one shows things larger by the ratio
of their sides. Every crop is resized to the engine's working size (``image_size``) and described as
the engine describes a frame (DVF → CX grid), so the head learns on exactly what it sees at run time.
Crops of different scenes overlap by 0.

Loss per pair: |NSO − truth| in both directions, plus |log scale − log truth| for overlapping pairs.

Data: TILDE webcams, OxBlue (days before ``holdout_from``) and GRIEF Stromovka (``SOURCE.txt`` of each
says where to get them). The TILDE ``holdout`` webcams, OxBlue from ``holdout_from`` on, GRIEF
Michigan and TUM are never trained on: ``benchmarks/bench_overlap.py`` measures on them.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from ..config import DejavuConfig
from ..features.overlap_head import BoxHead
from ..io.images import read_rgb
from ..relocalization.frame import describe
from ..schema import param, param_like
from .keypoint_head import KeypointTrainConfig, mean_grey

#: crop aspect (width / height) of every view: the engine's 4:3 working size
ASPECT = 4.0 / 3.0


@dataclass
class OverlapTrainConfig:
    steps: int = param(2000, "optimiser steps", low=1, high=1000000)
    batch: int = param(96, "pairs per step", low=1, high=8192)
    lr: float = param(2e-3, "Adam learning rate", low=1e-6, high=1.0)
    dims: int = param(8, "box dimensions", low=1, high=256)
    hidden: int = param(48, "channels of the head's first layers", low=4, high=512)
    crops: int = param(10, "crops per source frame", low=1, high=200)
    frames_per_webcam: int = param(8, "TILDE: frames per webcam, night to day", low=1, high=100)
    oxblue_frames: int = param(36, "OxBlue: frames before holdout_from, spread over days and conditions",
                               low=0, high=1000)
    grief_frames: int = param(60, "GRIEF Stromovka frames (each its own scene)", low=0, high=60)
    min_side: float = param(1.0 / 3.0, "smallest crop side as a fraction of the largest 4:3 view", low=0.05,
                            high=1.0)
    other_scene: float = param(0.2, "fraction of pairs drawn from two scenes (overlap 0)", low=0.0, high=1.0)
    image_width: int = param(320, "crops are resized to this width (4:3) before DVF", low=32, high=2048)
    # the same held-out split as the keypoint head's: neither head ever sees these frames
    holdout: list[str] = param_like(KeypointTrainConfig, "holdout")
    holdout_from: str = param_like(KeypointTrainConfig, "holdout_from")
    seed: int = param_like(KeypointTrainConfig, "seed")


@dataclass
class CropPool:
    """Described crops: CX grids, their rectangles in source-normalised coordinates, their scene."""
    grids: torch.Tensor  # N×n×h×w
    rects: np.ndarray  # (N, 4) x0, y0, x1, y1 in [0, 1] of the source frame
    scenes: np.ndarray  # (N,) scene id: crops of one scene share a pixel frame
    names: list[str] = field(default_factory=list)


# --- exact ground truth --------------------------------------------------------------------

def rect_overlaps(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(NSO(A→B), NSO(B→A), scale B/A) of axis-aligned rectangles (…, 4) in one frame's normalised
    coordinates (area ratios do not depend on the frame's aspect)."""
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = w * h
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / area_a, inter / area_b, np.sqrt(area_a / area_b)


def random_view(width: int, height: int, rng: np.random.Generator, min_side: float,
                inside: np.ndarray | None = None, zoom: float | None = None) -> np.ndarray:
    """A 4:3 rectangle (normalised x0, y0, x1, y1) in a width×height frame, its side drawn log-uniformly
    from [min_side, 1] of the largest 4:3 view; ``inside`` + ``zoom``: a zoom by that factor within it."""
    if inside is not None:
        x0, y0, x1, y1 = inside
        cw, ch = (x1 - x0) / zoom, (y1 - y0) / zoom
        cx = rng.uniform(x0, x1 - cw)
        cy = rng.uniform(y0, y1 - ch)
        return np.array([cx, cy, cx + cw, cy + ch])
    full_w = min(width, height * ASPECT)
    side = np.exp(rng.uniform(np.log(min_side), 0.0)) * full_w
    cw, ch = side / width, side / ASPECT / height
    cx, cy = rng.uniform(0, 1 - cw), rng.uniform(0, 1 - ch)
    return np.array([cx, cy, cx + cw, cy + ch])


def cut(image: np.ndarray, rect: np.ndarray, out_width: int) -> np.ndarray:
    """The view ``rect`` of ``image`` resized to out_width × (out_width · 3/4)."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = (rect * [w, h, w, h]).round().astype(int)
    x1, y1 = max(x1, x0 + 2), max(y1, y0 + 2)
    size = (out_width, round(out_width / ASPECT))
    crop = image[y0:y1, x0:x1]
    return cv2.resize(crop, size, interpolation=cv2.INTER_AREA if crop.shape[1] > out_width else cv2.INTER_LINEAR)


# --- sources ------------------------------------------------------------------------------

def training_scenes(data: Path, cfg: OverlapTrainConfig) -> list[list[Path]]:
    """Frames per scene (one fixed camera = one scene; a GRIEF image is its own scene)."""
    scenes = []
    tilde = data / "tilde_webcam"
    if (tilde / "manifest.csv").is_file():
        cams: dict[str, list[Path]] = {}
        with (tilde / "manifest.csv").open(newline="") as fh:
            for row in csv.DictReader(fh):
                if row["scene"] not in cfg.holdout:
                    cams.setdefault(row["scene"], []).append(tilde / row["file"])
        for frames in cams.values():
            ranked = sorted(frames, key=mean_grey)
            picks = np.linspace(0, len(ranked) - 1, min(cfg.frames_per_webcam, len(ranked))).round().astype(int)
            scenes.append([ranked[i] for i in sorted(set(picks))])
    oxblue = data / "oxblue_webcam"
    if cfg.oxblue_frames and (oxblue / "index.csv").is_file():
        with (oxblue / "index.csv").open(newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if r["utc"][:10] < cfg.holdout_from]
        picks = np.linspace(0, len(rows) - 1, min(cfg.oxblue_frames, len(rows))).round().astype(int)
        scenes.append([oxblue / rows[i]["path"] for i in sorted(set(picks))])
    grief = data / "grief_seasons" / "stromovka_monthly" / "images"
    if cfg.grief_frames and grief.is_dir():
        scenes += [[p] for p in sorted(grief.glob("*.jpg"))[: cfg.grief_frames]]
    return scenes


def describe_crops(scenes: list[list[Path]], extractor, cfg: OverlapTrainConfig, rng: np.random.Generator,
                   engine_cfg: DejavuConfig | None = None, progress=None, image_loader=read_rgb) -> CropPool:
    """``cfg.crops`` random views of every frame, described as the engine describes a frame."""
    engine_cfg = engine_cfg or DejavuConfig()
    grids, rects, ids, names = [], [], [], []
    for sid, frames in enumerate(scenes):
        for path in frames:
            image = image_loader(path)
            h, w = image.shape[:2]
            for _ in range(cfg.crops):
                rect = random_view(w, h, rng, cfg.min_side)
                grids.append(describe(cut(image, rect, cfg.image_width), extractor, engine_cfg).grid.float().cpu())
                rects.append(rect)
                ids.append(sid)
                names.append(str(path))
        if progress:
            progress(sid + 1, len(scenes))
    return CropPool(torch.stack(grids), np.stack(rects), np.asarray(ids), names)


def save_pool(pool: CropPool, path: Path) -> None:
    """The described crops as one safetensors file (retraining the head then skips the network)."""
    from safetensors.torch import save_file

    save_file({"grids": pool.grids.contiguous(), "rects": torch.from_numpy(pool.rects.astype(np.float32)),
               "scenes": torch.from_numpy(pool.scenes.astype(np.int64))}, str(path))


def load_pool(path: Path) -> CropPool:
    from safetensors.torch import load_file

    t = load_file(str(path))
    return CropPool(t["grids"], t["rects"].numpy().astype(np.float64), t["scenes"].numpy())


# --- training -----------------------------------------------------------------------------

def sample_pairs(pool: CropPool, n: int, other_scene: float, rng: np.random.Generator):
    """(index A, index B, NSO A→B, NSO B→A, scale, overlapping) for ``n`` random pairs."""
    scenes = {s: np.flatnonzero(pool.scenes == s) for s in np.unique(pool.scenes)}
    a = rng.integers(0, len(pool.scenes), n)
    b = np.empty(n, np.int64)
    cross = rng.random(n) < other_scene if len(scenes) > 1 else np.zeros(n, bool)
    for i in range(n):
        same = scenes[pool.scenes[a[i]]]
        if cross[i]:
            b[i] = rng.integers(0, len(pool.scenes))
            while pool.scenes[b[i]] == pool.scenes[a[i]]:
                b[i] = rng.integers(0, len(pool.scenes))
        else:
            b[i] = same[rng.integers(0, len(same))]
    ab, ba, scale = rect_overlaps(pool.rects[a], pool.rects[b])
    other = pool.scenes[a] != pool.scenes[b]
    ab[other], ba[other] = 0.0, 0.0
    return a, b, ab, ba, scale, ab > 0


def pair_loss(head: BoxHead, grids: torch.Tensor, a, b, ab, ba, scale, overlapping) -> torch.Tensor:
    lo, hi = head(grids)
    box_a, box_b = (lo[a], hi[a]), (lo[b], hi[b])
    loss = (head.overlap(box_a, box_b) - torch.as_tensor(ab, dtype=torch.float32)).abs().mean()
    loss = loss + (head.overlap(box_b, box_a) - torch.as_tensor(ba, dtype=torch.float32)).abs().mean()
    mask = torch.as_tensor(overlapping)
    if mask.any():
        log_s = torch.log(head.scale(box_a, box_b)[mask])
        loss = loss + (log_s - torch.log(torch.as_tensor(scale[overlapping], dtype=torch.float32))).abs().mean()
    return loss


def train_overlap_head(pool: CropPool, cfg: OverlapTrainConfig, descriptor_dim: int,
                       progress=None) -> tuple[BoxHead, list[float]]:
    """Adam on random pairs of the pool; each step embeds only the crops its pairs use."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    head = BoxHead(descriptor_dim, dims=cfg.dims, hidden=cfg.hidden)
    opt = torch.optim.Adam(head.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps)
    losses = []
    for step in range(cfg.steps):
        a, b, ab, ba, scale, overlapping = sample_pairs(pool, cfg.batch, cfg.other_scene, rng)
        used, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
        ia, ib = inverse[: len(a)], inverse[len(a):]
        loss = pair_loss(head, pool.grids[torch.as_tensor(used)], ia, ib, ab, ba, scale, overlapping)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(head.parameters(), 5.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if progress and (step + 1) % 200 == 0:
            progress(step + 1, float(np.mean(losses[-200:])))
    return head.eval(), losses
