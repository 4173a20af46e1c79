"""Periodic validation during training: per held-out split AUC and Recall@1, and the selection rule.

Uses the same pieces as ``dejavu-ros evaluate`` (evaluation-scale images, CX grid, all-pairs CX,
rank-statistic AUC) on a capped subset of each split, so a validation pass costs a minute, not an
hour. Each ``--val-manifest`` is one split, named by its file stem.

The selection rule (``validation.select: rule``) was declared before the first run that used it
and weighs night and seasons equally: half the mean cross-condition AUC of the pixel-aligned
(webcam, night↔day) splits plus half the mean Recall@1 of the other (route, season↔season)
splits. A split of either kind missing → the mean of the other.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..datasets.manifest import ImageRecord, load_record
from ..evaluation.images import prepare_image
from ..evaluation.metrics import recall_at_k, roc_auc
from ..evaluation.pairwise import ground_truth, pairwise_cx
from ..features.dvf import DVF
from ..similarity.grid import to_grid
from .augment import scale_input


def subsample_places(records: list[ImageRecord], max_images: int) -> list[ImageRecord]:
    """At most ``max_images`` records: whole places spread evenly over each sequence, or — when a
    split has too few places for that (fixed webcams) — every place with frames spread evenly."""
    if len(records) <= max_images:
        return list(records)
    places: dict[tuple[str, str], list[ImageRecord]] = {}
    for r in records:
        places.setdefault((r.sequence, r.place), []).append(r)
    keys = list(places)
    per_place = len(records) / len(keys)
    keep = int(max_images / per_place)
    if keep < 2 and len(keys) * 2 <= max_images:
        return subsample_frames(records, max_images)
    keep = max(2, keep)
    chosen = [keys[int(i)] for i in np.linspace(0, len(keys) - 1, min(keep, len(keys))).round()]
    return [r for k in dict.fromkeys(chosen) for r in places[k]]


def subsample_frames(records: list[ImageRecord], max_images: int) -> list[ImageRecord]:
    """Keep every place, and the same frames (image files) for all of them, spread evenly per condition."""
    frames: dict[str, list[str]] = {}
    for r in records:
        paths = frames.setdefault(r.condition, [])
        if r.path not in paths:
            paths.append(r.path)
    per_frame = len(records) / sum(len(p) for p in frames.values())
    per_condition = max(1, int(max_images / per_frame / len(frames)))
    chosen = set()
    for paths in frames.values():
        ordered = sorted(paths)
        picks = np.linspace(0, len(ordered) - 1, min(per_condition, len(ordered))).round().astype(int)
        chosen |= {ordered[i] for i in picks}
    return [r for r in records if r.path in chosen]


class ValidationSplit:
    """One held-out split: its images (resized once) and the pairs scored on them."""

    def __init__(self, name: str, records: list[ImageRecord], max_images: int, min_height: int,
                 max_side: int) -> None:
        self.name = name
        self.records = subsample_places(records, max_images)
        self.aligned = all(r.aligned for r in self.records)
        self.images = [prepare_image(load_record(r), min_height, max_side) for r in self.records]
        self.positive, valid = ground_truth(self.records)
        conditions = np.array([r.condition for r in self.records])
        self.cross = valid & (conditions[:, None] != conditions[None])

    def score(self, grids: list[torch.Tensor]) -> dict[str, float]:
        similarity = pairwise_cx(grids)
        auc = roc_auc(similarity[self.cross], self.positive[self.cross])
        recall = recall_at_k(similarity, self.positive, (1,), valid=self.cross)[1]
        return {"auc_cross": 100.0 * auc, "recall@1": 100.0 * recall}


def selection_rule(per_split: dict[str, dict[str, float]], aligned: dict[str, bool]) -> float:
    """½ mean webcam (aligned) AUC + ½ mean route Recall@1; one kind missing → the other's mean."""
    def mean(values):
        values = [v for v in values if not math.isnan(v)]
        return float(np.mean(values)) if values else math.nan

    webcam = mean(m["auc_cross"] for name, m in per_split.items() if aligned[name])
    route = mean(m["recall@1"] for name, m in per_split.items() if not aligned[name])
    if math.isnan(webcam) or math.isnan(route):
        return route if math.isnan(webcam) else webcam
    return 0.5 * webcam + 0.5 * route


class Validator:
    """Holds the held-out splits and scores a model on them."""

    def __init__(self, splits: dict[str, list[ImageRecord]] | list[ImageRecord], max_images: int = 120,
                 min_height: int = 128, max_side: int = 320, grid_max_side: int = 16, stride: int = 4) -> None:
        if not isinstance(splits, dict):
            splits = {"validation": list(splits)}
        self.splits = [ValidationSplit(name, records, max_images, min_height, max_side)
                       for name, records in splits.items() if records]
        self.grid_max_side, self.stride = grid_max_side, stride

    def __len__(self) -> int:
        return sum(len(s.records) for s in self.splits)

    @torch.inference_mode()
    def grids(self, model: DVF, device: torch.device, images: list[np.ndarray]) -> list[torch.Tensor]:
        out = []
        for image in images:
            x = scale_input(image.astype(np.float32) / 255.0, model.cfg.scaling, model.cfg.colour)
            batch = torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None].to(device)
            dense = model(batch)
            out.append(to_grid(dense, self.stride, max_side=self.grid_max_side)[0].float().cpu())
        return out

    def evaluate(self, model: DVF, device: torch.device) -> dict[str, float]:
        """Per split ``NAME/auc_cross`` and ``NAME/recall@1`` (%), their means and ``rule``."""
        was_training = model.training
        model.eval()
        try:
            per_split = {s.name: s.score(self.grids(model, device, s.images)) for s in self.splits}
        finally:
            model.train(was_training)
        out: dict[str, float] = {}
        for name, metrics in per_split.items():
            out.update({f"{name}/{k}": v for k, v in metrics.items()})
        for key in ("auc_cross", "recall@1"):
            values = [m[key] for m in per_split.values() if not math.isnan(m[key])]
            out[key] = float(np.mean(values)) if values else math.nan
        out["rule"] = selection_rule(per_split, {s.name: s.aligned for s in self.splits})
        return out
