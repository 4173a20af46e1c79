"""The paper's evaluation (§4): same-place classification by CX over all image pairs.

For every method (DVF and the baselines) each image becomes a set of vectors, all pairs are
scored by contextual similarity, and the scores are judged against the manifest's places:
ROC AUC per pair of conditions (Fig. 5), within- / cross-condition means (Table 1), Recall@K
per pair of conditions, ROC and PR curves.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..features.extractor import FeatureExtractor
from ..similarity.grid import to_grid
from ..datasets.manifest import ImageRecord, load_record
from .baselines import baseline
from .config import EvalSettings
from .images import prepare_image
from .metrics import pr_curve, recall_at_k, roc_auc, roc_curve
from .pairwise import ground_truth, pairwise_cx

@dataclass
class MethodResult:
    similarity: np.ndarray
    summary: dict[str, Any]
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


def _num(value: float) -> float | None:
    """Percent with 2 decimals; None where a metric is undefined (no positives or negatives)."""
    return None if value is None or math.isnan(value) else round(100.0 * value, 2)


def describe(records: Sequence[ImageRecord], images: Sequence[np.ndarray], method: str,
             extractor: FeatureExtractor | None, settings: EvalSettings,
             tick: Callable[[int], None] | None = None) -> list[torch.Tensor]:
    """One descriptor set per image for ``method`` (DVF grids or baseline vector sets)."""
    out = []
    if method == "dvf":
        if extractor is None:
            raise ValueError("the dvf method needs a model")
        for image in images:
            dense = extractor.extract(image)
            out.append(to_grid(dense, settings.grid_stride, max_side=settings.grid_max_side).cpu())
            if tick:
                tick(1)
        return out
    describe_one = baseline(method, settings.max_features)
    for image in images:
        out.append(describe_one(image))
        if tick:
            tick(1)
    return out


def score(similarity: np.ndarray, records: Sequence[ImageRecord], settings: EvalSettings) -> MethodResult:
    """Metrics of one similarity matrix (all in percent)."""
    positive, valid = ground_truth(records, settings.positive_radius, settings.ignore_radius)
    conditions = sorted({r.condition for r in records})
    cond = np.array([r.condition for r in records])
    auc_matrix: dict[str, dict[str, float | None]] = {}
    recall_matrix: dict[str, dict[str, dict[str, float | None]]] = {}
    within, across = [], []
    for a in conditions:
        auc_matrix[a], recall_matrix[a] = {}, {}
        for b in conditions:
            mask = valid & (cond[:, None] == a) & (cond[None] == b)
            auc = roc_auc(similarity[mask], positive[mask])
            auc_matrix[a][b] = _num(auc)
            if not math.isnan(auc):
                (within if a == b else across).append(auc)
            rec = recall_at_k(similarity, positive, settings.ks, query_mask=cond == a, database_mask=cond == b,
                              valid=valid)
            recall_matrix[a][b] = {f"recall@{k}": _num(v) for k, v in rec.items()}
    cross_pairs = valid & (cond[:, None] != cond[None])
    upper = np.triu(np.ones_like(cross_pairs), 1)  # each unordered pair once in the curves
    curve_mask = cross_pairs & upper
    recall = recall_at_k(similarity, positive, settings.ks, valid=cross_pairs)
    summary: dict[str, Any] = {
        "auc_within": _num(float(np.mean(within))) if within else None,
        "auc_cross": _num(float(np.mean(across))) if across else None,
        "auc_cross_pooled": _num(roc_auc(similarity[cross_pairs], positive[cross_pairs])),
        **{f"recall@{k}": _num(v) for k, v in recall.items()},
        "auc_matrix": auc_matrix,
        "recall_matrix": recall_matrix,
    }
    curves = {"roc": roc_curve(similarity[curve_mask], positive[curve_mask]),
              "pr": pr_curve(similarity[curve_mask], positive[curve_mask])}
    return MethodResult(similarity, summary, curves)


def evaluate(records: Sequence[ImageRecord], extractor: FeatureExtractor | None, settings: EvalSettings,
             progress: bool = True) -> tuple[dict[str, Any], dict[str, MethodResult], list[np.ndarray]]:
    """Run every method; returns (summary.json body, per-method results, the evaluation images)."""
    from tqdm import tqdm

    images = [prepare_image(load_record(r), settings.min_height, settings.max_side)
              for r in tqdm(records, desc="load", disable=not progress, leave=False)]
    results: dict[str, MethodResult] = {}
    timings: dict[str, dict[str, float]] = {}
    budget = settings.memory_budget_mb << 20
    for method in settings.methods:
        t0 = time.perf_counter()
        with tqdm(total=len(images), desc=f"{method} describe", disable=not progress, leave=False) as bar:
            sets = describe(records, images, method, extractor, settings, bar.update)
        t1 = time.perf_counter()
        with tqdm(total=len(images), desc=f"{method} CX", disable=not progress, leave=False) as bar:
            similarity = pairwise_cx(sets, memory_budget_bytes=budget, progress=bar.update)
        t2 = time.perf_counter()
        results[method] = score(similarity, records, settings)
        timings[method] = {"describe_s": round(t1 - t0, 2), "pairwise_cx_s": round(t2 - t1, 2),
                           "vectors_per_image": round(float(np.mean([s.shape[0] if s.dim() == 2 else
                                                                     s.shape[1] * s.shape[2] for s in sets])), 1)}
    summary = {
        "methods": {m: {**r.summary, "timing": timings[m]} for m, r in results.items()},
        "images": len(records),
        "conditions": sorted({r.condition for r in records}),
        "settings": {"min_height": settings.min_height, "max_side": settings.max_side,
                     "grid_stride": settings.grid_stride, "grid_max_side": settings.grid_max_side,
                     "max_features": settings.max_features, "positive_radius": settings.positive_radius,
                     "ignore_radius": settings.ignore_radius,
                     "model": extractor.source if extractor is not None else None},
    }
    return summary, results, images
