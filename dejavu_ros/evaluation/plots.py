"""PNG figures of an evaluation: ROC and PR curves, AUC heatmaps, PCA feature images, retrievals."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from ..datasets.manifest import ImageRecord  # noqa: E402
from .pca import pca_rgb_many  # noqa: E402


def curves(results: dict, kind: str, path: Path) -> Path:
    """All methods' cross-condition ROC (kind="roc") or PR (kind="pr") curves in one figure.

    The curves pool every cross-condition pair, so the legend's AUC is the pooled one (the same
    number the console prints as ``auc_pooled``), not the mean over condition pairs.
    """
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, r in results.items():
        x, y = r.curves[kind]
        label = name
        if kind == "roc" and r.summary.get("auc_cross_pooled") is not None:
            label += f" (pooled AUC {r.summary['auc_cross_pooled']:.1f})"
        ax.plot(x, y, label=label)
    if kind == "roc":
        ax.plot([0, 1], [0, 1], "k:", lw=0.8)
        ax.set(xlabel="false positive rate", ylabel="true positive rate",
               title="cross-condition ROC (all pairs pooled)")
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
    size = 1.6 + 0.55 * len(conds)
    fig, ax = plt.subplots(figsize=(size + 1.5, size + 0.4))
    im = ax.imshow(data, vmin=0, vmax=100, cmap="viridis")  # 0-100: below-chance values must look low
    ax.set_xticks(range(len(conds)), conds, rotation=60, fontsize=7)
    ax.set_yticks(range(len(conds)), conds, fontsize=7)
    if len(conds) <= 16:
        for i in range(len(conds)):
            for j in range(len(conds)):
                if not np.isnan(data[i, j]):
                    ax.text(j, i, f"{data[i, j]:.0f}", ha="center", va="center", fontsize=7,
                            color="black" if data[i, j] > 60 else "white")
    ax.set_title(f"{name}: ROC AUC (%) per condition pair", fontsize=9)
    if np.isnan(data).any():
        ax.set_xlabel("blank: undefined (no positive or no negative pair, e.g. one image per place "
                      "and condition)", fontsize=6)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def feature_images(images: Sequence[np.ndarray], dense: Sequence[torch.Tensor], path: Path,
                   titles: Sequence[str] | None = None) -> Path:
    """Each input image beside its DVF descriptors as PCA colours — one basis and one colour
    stretch for the whole figure, so the same colour is the same descriptor in every panel."""
    coloured = pca_rgb_many(list(dense))
    fig, axes = plt.subplots(len(images), 2, figsize=(6.0, 2.2 * len(images) + 0.5), squeeze=False)
    for k, (image, rgb) in enumerate(zip(images, coloured)):
        axes[k, 0].imshow(image)
        axes[k, 1].imshow(rgb)
        axes[k, 0].set_title(titles[k] if titles else f"image {k}", fontsize=8)
        axes[k, 1].set_title("DVF descriptors (PCA, shared basis)", fontsize=8)
        axes[k, 0].axis("off")
        axes[k, 1].axis("off")
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
        axes[row, 0].set_title(f"query {_where(records[q])}", fontsize=7)
        for col, j in enumerate(order, start=1):
            same = records[j].sequence == records[q].sequence and records[j].place == records[q].place
            axes[row, col].imshow(images[j])
            axes[row, col].set_title(f"{_where(records[j])} {similarity[q, j]:.3f}",
                                     fontsize=7, color="green" if same else "red")
        for ax in axes[row]:
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _where(record: ImageRecord) -> str:
    """sequence:place/condition — places of different data sets may share a name (loc01)."""
    return f"{record.sequence + ':' if record.sequence else ''}{record.place}/{record.condition}"
