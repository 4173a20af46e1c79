"""Evaluation metrics against brute-force references, all-pairs CX, and the PCA colouring."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dejavu_ros.evaluation.metrics import pr_curve, recall_at_k, roc_auc, roc_curve
from dejavu_ros.evaluation.pairwise import ground_truth, pairwise_cx
from dejavu_ros.evaluation.pca import pca_rgb
from dejavu_ros.similarity.cx import contextual_similarity
from dejavu_ros.datasets.manifest import ImageRecord


def _pair_count_auc(scores, labels):
    """Reference: count positive/negative pairs in order, ties one half."""
    pos, neg = scores[labels], scores[~labels]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def test_auc_equals_rank_statistic_on_hand_built_case():
    scores = np.array([0.9, 0.8, 0.8, 0.7, 0.4, 0.4, 0.3, 0.1])
    labels = np.array([1, 0, 1, 1, 0, 1, 0, 0], bool)
    # hand count: positives 0.9, 0.8, 0.7, 0.4 vs negatives 0.8, 0.4, 0.3, 0.1 → 4 + 3.5 + 3 + 2.5 = 13 of 16
    assert roc_auc(scores, labels) == pytest.approx(13 / 16)
    rng = np.random.default_rng(0)
    s, y = rng.integers(0, 5, 60).astype(float), rng.random(60) < 0.4
    assert roc_auc(s, y) == pytest.approx(_pair_count_auc(s, y))
    fpr, tpr = roc_curve(s, y)
    assert np.trapezoid(tpr, fpr) == pytest.approx(roc_auc(s, y), abs=0.08)  # ties make the curve steppy
    assert np.isnan(roc_auc(np.ones(3), np.ones(3, bool)))


def test_pr_curve_and_recall_at_k():
    recall, precision = pr_curve(np.array([0.9, 0.5, 0.1]), np.array([True, False, True]))
    assert np.allclose(recall, [0.5, 0.5, 1.0]) and np.allclose(precision, [1.0, 0.5, 2 / 3])
    sim = np.array([[0, .9, .2, .1], [.9, 0, .3, .8], [.2, .3, 0, .5], [.1, .8, .5, 0]])
    positive = np.eye(4, dtype=bool) | np.array([[0, 0, 1, 0], [0, 0, 0, 1], [1, 0, 0, 0], [0, 1, 0, 0]], bool)
    rec = recall_at_k(sim, positive, (1, 2))
    # 0: best is 1 (wrong), 2nd is 2 (right); 1: best 0 (wrong), 2nd 3; 2: best 3 (wrong), 2nd 1 → miss; 3: best 1 ✓
    assert rec[1] == pytest.approx(0.25) and rec[2] == pytest.approx(0.75)


def test_ground_truth_radius_and_ignore_band():
    recs = [ImageRecord(str(i), str(p), c, "r") for i, (p, c) in enumerate([(0, "a"), (1, "b"), (5, "b"), (0, "b")])]
    positive, valid = ground_truth(recs, positive_radius=0, ignore_radius=2)
    assert positive[0, 3] and not positive[0, 1] and not valid[0, 1]  # neighbour: not scored
    assert valid[0, 2] and not positive[0, 2] and not valid[0, 0]


def test_pairwise_cx_matches_direct_calls_and_is_symmetric():
    gen = torch.Generator().manual_seed(0)
    grids = [F.normalize(torch.randn(5, 4, 6, generator=gen), dim=0) for _ in range(3)]
    grids.append(F.normalize(torch.randn(5, 3, 3, generator=gen), dim=0))  # another grid shape
    matrix = pairwise_cx(grids, memory_budget_bytes=4096)
    assert np.allclose(matrix, matrix.T)
    for i, j in ((0, 1), (2, 3)):
        assert matrix[i, j] == pytest.approx(contextual_similarity(grids[i], grids[j]).item(), abs=1e-5)
    empty = pairwise_cx([torch.zeros(0, 5), grids[0].flatten(1).t()])
    assert empty[0, 1] == 0


def test_pca_rgb_shape_and_range():
    dense = F.normalize(torch.randn(10, 12, 20), dim=0)
    rgb = pca_rgb(dense)
    assert rgb.shape == (12, 20, 3) and rgb.dtype == np.uint8 and rgb.max() > 200 and rgb.min() < 50
    with pytest.raises(ValueError):
        pca_rgb(torch.zeros(3, 4))
