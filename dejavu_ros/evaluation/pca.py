"""Dense descriptors → false-colour image (the paper's Fig. 4): the first three principal components."""
from __future__ import annotations

import numpy as np
import torch


def pca_rgb(dense: torch.Tensor | np.ndarray, basis: np.ndarray | None = None,
            percentile: float = 1.0) -> np.ndarray:
    """n×H×W descriptors → H×W×3 uint8.

    ``basis`` (n×3, e.g. from :func:`pca_basis` over several images) gives comparable colours
    across images; without it each image gets its own components. Each channel is stretched
    between its ``percentile`` and ``100 − percentile`` values.
    """
    array = dense.detach().float().cpu().numpy() if isinstance(dense, torch.Tensor) else np.asarray(dense, np.float32)
    if array.ndim != 3:
        raise ValueError(f"pca_rgb expects n×H×W descriptors, got shape {array.shape}")
    n, h, w = array.shape
    vectors = array.reshape(n, -1).T  # (H·W)×n
    if basis is None:
        basis = pca_basis([array])
    projected = (vectors - vectors.mean(axis=0)) @ basis
    if projected.shape[1] < 3:  # fewer than 3 channels: pad with zeros
        projected = np.pad(projected, ((0, 0), (0, 3 - projected.shape[1])))
    lo = np.percentile(projected, percentile, axis=0)
    hi = np.percentile(projected, 100 - percentile, axis=0)
    scaled = (projected - lo) / np.maximum(hi - lo, 1e-8)
    return (np.clip(scaled, 0, 1) * 255).astype(np.uint8).reshape(h, w, 3)


def pca_basis(maps: list[np.ndarray | torch.Tensor], samples: int = 20000, seed: int = 0) -> np.ndarray:
    """n×k (k = min(3, n)) principal directions of the descriptors of several n×H×W maps."""
    rng = np.random.default_rng(seed)
    pools = []
    for m in maps:
        a = m.detach().float().cpu().numpy() if isinstance(m, torch.Tensor) else np.asarray(m, np.float32)
        v = a.reshape(a.shape[0], -1).T
        take = min(len(v), max(1, samples // max(1, len(maps))))
        pools.append(v[rng.choice(len(v), take, replace=False)])
    data = np.concatenate(pools)
    data = data - data.mean(axis=0)
    _u, _s, vt = np.linalg.svd(data, full_matrices=False)
    return vt[:min(3, vt.shape[0])].T
