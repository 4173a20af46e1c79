"""Place-recognition metrics on a similarity matrix: ROC AUC, ROC / PR curves, Recall@K.

AUC is computed as the Mann–Whitney rank statistic (ties count one half), which equals the area
under the ROC curve exactly and needs no threshold sweep.
"""
from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Probability that a random positive scores above a random negative (ties = ½); NaN if a class is empty."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels, dtype=bool).ravel()
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)  # average ranks for ties
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate) over all thresholds, from (0, 0) to (1, 1)."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64).ravel(), kind="stable")
    labels = np.asarray(labels, dtype=bool).ravel()[order]
    tp, fp = np.cumsum(labels), np.cumsum(~labels)
    tpr = np.concatenate([[0.0], tp / max(1, labels.sum())])
    fpr = np.concatenate([[0.0], fp / max(1, (~labels).sum())])
    return fpr, tpr


def pr_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(recall, precision) over all thresholds, most confident first."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64).ravel(), kind="stable")
    labels = np.asarray(labels, dtype=bool).ravel()[order]
    tp = np.cumsum(labels)
    precision = tp / np.arange(1, labels.size + 1)
    recall = tp / max(1, labels.sum())
    return recall, precision


def recall_at_k(similarity: np.ndarray, positive: np.ndarray, ks: tuple[int, ...] = (1, 5, 10),
                query_mask: np.ndarray | None = None, database_mask: np.ndarray | None = None,
                valid: np.ndarray | None = None) -> dict[int, float]:
    """Fraction of queries with a true match among their top-K database images (in [0, 1]).

    ``similarity`` and ``positive`` are N×N; ``query_mask`` / ``database_mask`` choose rows and
    columns (e.g. condition A against condition B); ``valid`` removes pairs from the ranking (an
    image against itself). Queries without any positive in the database are skipped.
    """
    n = similarity.shape[0]
    rows = np.flatnonzero(query_mask if query_mask is not None else np.ones(n, bool))
    cols_mask = database_mask if database_mask is not None else np.ones(n, bool)
    hits = {k: 0 for k in ks}
    counted = 0
    for i in rows:
        usable = cols_mask.copy()
        if valid is not None:
            usable &= valid[i]
        usable[i] = False
        cols = np.flatnonzero(usable)
        if cols.size == 0 or not positive[i, cols].any():
            continue
        counted += 1
        order = cols[np.argsort(-similarity[i, cols], kind="stable")]
        for k in ks:
            hits[k] += bool(positive[i, order[:k]].any())
    return {k: (hits[k] / counted if counted else float("nan")) for k in ks}
