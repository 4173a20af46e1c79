"""PNG figures of an evaluation: ROC and PR curves, AUC heatmaps, PCA feature images, retrievals."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from ..training.manifest import ImageRecord  # noqa: E402
from .pca import pca_basis, pca_rgb  # noqa: E402


def curves(results: dict, kind: str, path: Path) -> Path:
    """All methods' cross-condition ROC (kind="roc") or PR (kind="pr") curves in one figure."""
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, r in results.items():
        x, y = r.curves[kind]
        label = name
        if kind == "roc" and r.summary.get("auc_cross_pooled") is not None:
            label += f" (AUC {r.summary['auc_cross_pooled']:.1f})"
        ax.plot(x, y, label=label)
    if kind == "roc":
        ax.plot([0, 1], [0, 1], "k:", lw=0.8)
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title="cross-condition ROC")
    else:
        ax.set(xlabel="recall", ylabel="precision", title="cross-condition precision–recall")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def auc_heatmap(name: str, summary: dict, path: Path) -> Path:
    """Condition × condition AUC matrix (the paper's Fig. 5)."""
    matrix = summary["auc_matrix"]
    conds = list(matrix)
    data = np.array([[np.nan if matrix[a][b] is None else matrix[a][b] for b in conds] for a in conds])
    size = 1.2 + 0.45 * len(conds)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    im = ax.imshow(data, vmin=50, vmax=100, cmap="viridis")
    ax.set_xticks(range(len(conds)), conds, rotation=60, fontsize=7)
    ax.set_yticks(range(len(conds)), conds, fontsize=7)
    if len(conds) <= 12:
        for i in range(len(conds)):
            for j in range(len(conds)):
                if not np.isnan(data[i, j]):
                    ax.text(j, i, f"{data[i, j]:.0f}", ha="center", va="center", fontsize=6, color="w")
    ax.set_title(f"{name}: ROC AUC (%) per condition pair", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def feature_images(images: Sequence[np.ndarray], dense: Sequence[torch.Tensor], path: Path) -> Path:
    """Images above their DVF descriptors as PCA colours (one shared basis, so colours compare)."""
    basis = pca_basis(list(dense))
    fig, axes = plt.subplots(2, len(images), figsize=(2.6 * len(images), 3.2), squeeze=False)
    for k, (image, d) in enumerate(zip(images, dense)):
        axes[0, k].imshow(image)
        axes[1, k].imshow(pca_rgb(d, basis))
        axes[0, k].axis("off")
        axes[1, k].axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def retrievals(similarity: np.ndarray, records: Sequence[ImageRecord], images: Sequence[np.ndarray],
               queries: Sequence[int], path: Path, top: int = 3) -> Path:
    """For a few queries: the query and its best other-condition matches (green = same place)."""
    cond = np.array([r.condition for r in records])
    fig, axes = plt.subplots(len(queries), top + 1, figsize=(2.4 * (top + 1), 1.6 * len(queries) + 0.4),
                             squeeze=False)
    for row, q in enumerate(queries):
        candidates = np.flatnonzero(cond != cond[q])
        order = candidates[np.argsort(-similarity[q, candidates], kind="stable")][:top]
        axes[row, 0].imshow(images[q])
        axes[row, 0].set_title(f"query {records[q].place}/{records[q].condition}", fontsize=7)
        for col, j in enumerate(order, start=1):
            same = records[j].sequence == records[q].sequence and records[j].place == records[q].place
            axes[row, col].imshow(images[j])
            axes[row, col].set_title(f"{records[j].place}/{records[j].condition} {similarity[q, j]:.3f}",
                                     fontsize=7, color="green" if same else "red")
        for ax in axes[row]:
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
