"""Periodic validation during training: cross-condition AUC and Recall@1 on held-out places.

Uses the same pieces as ``dejavu-ros evaluate`` (evaluation-scale images, CX grid, all-pairs CX,
rank-statistic AUC) on a capped subset, so a validation pass costs seconds, not minutes.
"""
from __future__ import annotations

import numpy as np
import torch

from ..evaluation.images import prepare_image
from ..evaluation.metrics import recall_at_k, roc_auc
from ..evaluation.pairwise import ground_truth, pairwise_cx
from ..features.dvf import DVF
from ..similarity.grid import to_grid
from .augment import load_rgb, scale_input
from .manifest import ImageRecord


def subsample_places(records: list[ImageRecord], max_images: int) -> list[ImageRecord]:
    """Keep whole places (all their conditions), spread evenly over each sequence."""
    if len(records) <= max_images:
        return list(records)
    places: dict[tuple[str, str], list[ImageRecord]] = {}
    for r in records:
        places.setdefault((r.sequence, r.place), []).append(r)
    keys = list(places)
    per_place = len(records) / len(keys)
    keep = max(2, int(max_images / per_place))
    chosen = [keys[int(i)] for i in np.linspace(0, len(keys) - 1, min(keep, len(keys))).round()]
    return [r for k in dict.fromkeys(chosen) for r in places[k]]


class Validator:
    """Holds the held-out images (resized once) and scores a model on them."""

    def __init__(self, records: list[ImageRecord], max_images: int = 160, min_height: int = 128,
                 max_side: int = 320, grid_max_side: int = 16, stride: int = 4) -> None:
        self.records = subsample_places(records, max_images)
        self.images = [prepare_image(load_rgb(r.path), min_height, max_side) for r in self.records]
        self.grid_max_side, self.stride = grid_max_side, stride
        self.positive, valid = ground_truth(self.records)
        conditions = np.array([r.condition for r in self.records])
        self.cross = valid & (conditions[:, None] != conditions[None])

    def __len__(self) -> int:
        return len(self.records)

    @torch.inference_mode()
    def grids(self, model: DVF, device: torch.device) -> list[torch.Tensor]:
        out = []
        for image in self.images:
            x = scale_input(image.astype(np.float32) / 255.0, model.cfg.scaling)
            batch = torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None].to(device)
            dense = model(batch)
            out.append(to_grid(dense, self.stride, max_side=self.grid_max_side)[0].float().cpu())
        return out

    def evaluate(self, model: DVF, device: torch.device) -> dict[str, float]:
        """{"auc_cross": %, "recall@1": %} over cross-condition pairs of held-out places."""
        was_training = model.training
        model.eval()
        try:
            similarity = pairwise_cx(self.grids(model, device))
        finally:
            model.train(was_training)
        auc = roc_auc(similarity[self.cross], self.positive[self.cross])
        recall = recall_at_k(similarity, self.positive, (1,), valid=self.cross)[1]
        return {"auc_cross": 100.0 * auc, "recall@1": 100.0 * recall}
