"""Evaluation stage: the paper's AUC / Recall@K protocol, hand-crafted baselines, plots, PCA colours."""
from .pca import pca_basis, pca_rgb

__all__ = ["pca_basis", "pca_rgb"]
