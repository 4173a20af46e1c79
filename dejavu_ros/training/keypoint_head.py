"""Training of the keypoint head (``features/keypoint_head.py``) on pixel-aligned webcams.

A fixed camera shows the same point at the same pixel in every frame, so the correct match of every
keyframe pixel in a night frame is known exactly. For each day keyframe and several nights of the
same camera, the engine's own dense search (``matching.match_dense``: coarse search, ratio and
stability tests) is run from a jittered grid of keyframe pixels over the night's DVF map; the target
of a pixel is the fraction of nights in which its match lands within ``tolerance_px``. The head
learns that matchability from the frozen day map with a binary cross-entropy on the soft targets.
Large scene changes (construction on OxBlue) need no mask: pixels that changed never match.

Data: TILDE webcams and OxBlue (``SOURCE.txt`` of each says where to get them). The frames that
``benchmarks/bench_matching_webcams.py`` measures (per TILDE webcam its brightest frame and its
8 darkest), the TILDE ``holdout`` webcams and OxBlue from ``holdout_from`` on are never used.
"""
from __future__ import annotations

import csv
import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..features.keypoint_head import KeypointHead
from ..io.images import read_rgb
from ..matching.config import MatchingConfig
from ..matching.dense_matching import match_dense
from ..matching.sampling import sample_descriptors
from ..schema import param


@dataclass
class KeypointTrainConfig:
    steps: int = param(400, "optimiser steps", low=1, high=100000)
    lr: float = param(3e-3, "Adam learning rate", low=1e-6, high=1.0)
    hidden: int = param(16, "channels of the head's hidden layers", low=2, high=256)
    nights: int = param(6, "night frames matched per day keyframe", low=1, high=64)
    grid_px: int = param(8, "spacing of the labelled keyframe pixels (jittered per night)", low=2, high=64)
    tolerance_px: float = param(4.0, "a match is correct within this many pixels per axis", low=0.5, high=50.0)
    tilde_keyframes: int = param(3, "day keyframes per TILDE webcam", low=1, high=20)
    holdout: list[str] = param(["mexico"], "TILDE webcams never trained on")
    holdout_from: str = param("2023-06-22", "OxBlue: days from this date on are never trained on")
    bench_queries: int = param(8, "TILDE: the darkest frames the matching benchmark uses, never trained on",
                               low=0, high=64)
    seed: int = param(0, "random seed", low=0, high=2**31 - 1)


@dataclass
class LabelledMap:
    """One day keyframe's DVF map and the matchability targets at its labelled pixels."""
    name: str
    dense: torch.Tensor  # n×H×W
    xy: torch.Tensor  # (K, 2) pixel positions
    target: torch.Tensor  # (K,) fraction of nights matched correctly
    extra: dict = field(default_factory=dict)


def centre_crop(image: np.ndarray, width: int = 640, height: int = 480) -> np.ndarray:
    """The central width×height of an image (smaller images unchanged): the view the webcam benchmark uses."""
    h, w = image.shape[:2]
    y0, x0 = max(0, (h - height) // 2), max(0, (w - width) // 2)
    return np.ascontiguousarray(image[y0:y0 + height, x0:x0 + width])


def mean_grey(path: Path) -> float:
    """Mean grey level of an image file: how webcam frames are ranked from night to day."""
    return float(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).mean())


def tilde_sets(root: Path, cfg: KeypointTrainConfig) -> list[tuple[str, list[Path], list[Path]]]:
    """(name, day keyframes, nights) per TILDE webcam outside the hold-out, benchmark frames removed."""
    cams: dict[str, list[Path]] = {}
    with (root / "manifest.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            if row["scene"] not in cfg.holdout:
                cams.setdefault(row["scene"], []).append(root / row["file"])
    out = []
    for scene, frames in sorted(cams.items()):
        order = sorted(frames, key=mean_grey)[cfg.bench_queries:-1]  # the benchmark's nights and keyframe out
        out.append((f"tilde/{scene}", order[-cfg.tilde_keyframes:], order[: cfg.nights]))
    return out


def oxblue_sets(root: Path, cfg: KeypointTrainConfig) -> list[tuple[str, list[Path], list[Path]]]:
    """(name, [brightest frame of a day], nights of the following night) for each training day."""
    with (root / "index.csv").open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["utc"][:10] < cfg.holdout_from]
    when = {r["path"]: datetime.fromisoformat(r["utc"].replace("Z", "+00:00")) for r in rows}
    out = []
    for date in sorted({r["utc"][:10] for r in rows}):
        days = [r for r in rows if r["condition"] == "day" and r["utc"][:10] == date]
        if not days:
            continue
        day = max(days, key=lambda r: float(r["mean_luma"]))
        after = [r for r in rows if r["condition"] == "night"
                 and timedelta(0) < when[r["path"]] - when[day["path"]] <= timedelta(hours=24)]
        if len(after) < 2:
            continue
        picks = np.linspace(0, len(after) - 1, min(cfg.nights, len(after))).round().astype(int)
        out.append((f"oxblue/{date}", [root / day["path"]], [root / after[i]["path"] for i in sorted(set(picks))]))
    return out


def label_keyframe(extractor, keyframe: np.ndarray, nights: list[np.ndarray], cfg: KeypointTrainConfig,
                   rng: np.random.Generator, name: str = "") -> LabelledMap:
    """Matchability targets of one keyframe from the engine's dense search into each night."""
    dense = extractor.extract(keyframe).float().cpu()
    _, h, w = dense.shape
    g = cfg.grid_px
    mcfg = dataclasses.replace(MatchingConfig(), reciprocity=False)  # grid neighbours would veto each other
    hits = []
    xy_all = []
    for night in nights:
        off = rng.uniform(0, g, size=2)
        xs, ys = np.arange(off[0] + 4, w - 4, g), np.arange(off[1] + 4, h - 4, g)
        xy = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2).astype(np.float32)
        query = extractor.extract(night).float().cpu()
        m = match_dense(xy, sample_descriptors(dense, xy), query, mcfg)
        ok = np.zeros(len(xy), np.float32)
        if len(m):
            good = np.all(np.abs(m.query_xy - m.map_xy) <= cfg.tolerance_px, axis=1)
            ok[m.map_idx[good]] = 1.0
        hits.append(ok)
        xy_all.append(xy)
    # Each night labels its own jittered grid; the target of a pixel is the mean over the nights
    # whose grid it belongs to, read from a smoothed hit map so every night informs every pixel.
    hit_map = np.zeros((h, w), np.float32)
    count = np.zeros((h, w), np.float32)
    for xy, ok in zip(xy_all, hits):
        cols, rows = np.round(xy[:, 0]).astype(int), np.round(xy[:, 1]).astype(int)
        np.add.at(hit_map, (rows, cols), ok)
        np.add.at(count, (rows, cols), 1.0)
    k = 2 * (g // 2) + 1
    hit_s, count_s = cv2.blur(hit_map, (k, k)), cv2.blur(count, (k, k))
    xy = np.concatenate(xy_all)
    cols, rows = np.round(xy[:, 0]).astype(int), np.round(xy[:, 1]).astype(int)
    target = hit_s[rows, cols] / np.maximum(count_s[rows, cols], 1e-6)
    return LabelledMap(name, dense, torch.from_numpy(xy), torch.from_numpy(np.clip(target, 0, 1).astype(np.float32)),
                       extra={"hit_rate": float(np.mean(np.concatenate(hits)))})


def _read(path: Path) -> np.ndarray:
    return centre_crop(read_rgb(path))


def build_labels(extractor, data: Path, cfg: KeypointTrainConfig, progress=None) -> list[LabelledMap]:
    rng = np.random.default_rng(cfg.seed)
    sets = tilde_sets(data / "tilde_webcam", cfg) + oxblue_sets(data / "oxblue_webcam", cfg)
    out = []
    for name, keyframes, nights in sets:
        night_images = [_read(p) for p in nights]
        for kf in keyframes:
            out.append(label_keyframe(extractor, _read(kf), night_images, cfg, rng, f"{name}/{kf.name}"))
            if progress:
                progress(out[-1])
    return out


def _logits_at(head: KeypointHead, item: LabelledMap) -> torch.Tensor:
    logits = head(item.dense[None])[0]  # 1×H×W
    _, h, w = logits.shape
    grid = item.xy * torch.tensor([2.0 / (w - 1), 2.0 / (h - 1)]) - 1.0
    return F.grid_sample(logits[None], grid.view(1, 1, -1, 2), mode="bilinear", align_corners=True)[0, 0, 0]


def train_head(items: list[LabelledMap], cfg: KeypointTrainConfig, descriptor_dim: int,
               progress=None) -> tuple[KeypointHead, list[float]]:
    """Fit the head to the soft targets; returns it (eval mode) and the loss per step."""
    if not items:
        raise ValueError("no labelled keyframes to train the keypoint head on")
    torch.manual_seed(cfg.seed)
    head = KeypointHead(descriptor_dim, hidden=cfg.hidden)
    opt = torch.optim.Adam(head.parameters(), lr=cfg.lr)
    order = np.random.default_rng(cfg.seed).permutation(np.resize(np.arange(len(items)), cfg.steps))
    losses = []
    for step, i in enumerate(order):
        item = items[int(i)]
        loss = F.binary_cross_entropy_with_logits(_logits_at(head, item), item.target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if progress:
            progress(step, losses[-1])
    return head.eval(), losses


@torch.no_grad()
def ranking_auc(head: KeypointHead, items: list[LabelledMap], positive: float = 0.5) -> float:
    """ROC AUC of the head's score for pixels matched in more than ``positive`` of the nights."""
    from ..evaluation.metrics import roc_auc

    scores, labels = [], []
    for item in items:
        scores.append(torch.sigmoid(_logits_at(head, item)).numpy())
        labels.append((item.target.numpy() > positive))
    labels_all = np.concatenate(labels)
    if labels_all.all() or not labels_all.any():
        return float("nan")
    return float(roc_auc(np.concatenate(scores), labels_all))
