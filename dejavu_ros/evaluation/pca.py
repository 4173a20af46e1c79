"""Dense descriptors → false-colour image (the paper's Fig. 4): the first three principal components."""
from __future__ import annotations

import numpy as np
import torch


def _array(dense) -> np.ndarray:
    array = dense.detach().float().cpu().numpy() if isinstance(dense, torch.Tensor) else np.asarray(dense, np.float32)
    if array.ndim != 3:
        raise ValueError(f"PCA pictures need n×H×W descriptors, got shape {array.shape}")
    return array


def _project(array: np.ndarray, basis: np.ndarray, centre: np.ndarray) -> np.ndarray:
    projected = (array.reshape(array.shape[0], -1).T - centre) @ basis
    if projected.shape[1] < 3:  # fewer than 3 channels: pad with zeros
        projected = np.pad(projected, ((0, 0), (0, 3 - projected.shape[1])))
    return projected


def _stretch(projected: np.ndarray, lo: np.ndarray, hi: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    scaled = (projected - lo) / np.maximum(hi - lo, 1e-8)
    return (np.clip(scaled, 0, 1) * 255).astype(np.uint8).reshape(shape[0], shape[1], 3)


def pca_rgb(dense: torch.Tensor | np.ndarray, basis: np.ndarray | None = None,
            percentile: float = 1.0) -> np.ndarray:
    """n×H×W descriptors → H×W×3 uint8 with this image's own colour stretch (between its
    ``percentile`` and ``100 − percentile`` values). For pictures that compare, use
    :func:`pca_rgb_many`."""
    array = _array(dense)
    basis = pca_basis([array]) if basis is None else basis
    projected = _project(array, basis, array.reshape(array.shape[0], -1).mean(axis=1))
    lo, hi = np.percentile(projected, percentile, axis=0), np.percentile(projected, 100 - percentile, axis=0)
    return _stretch(projected, lo, hi, array.shape[1:])


def pca_rgb_many(maps: list[np.ndarray | torch.Tensor], percentile: float = 1.0) -> list[np.ndarray]:
    """Several maps with one basis, one centre and one colour stretch: the same colour is the same
    descriptor in every picture (the paper's Fig. 4)."""
    arrays = [_array(m) for m in maps]
    basis = pca_basis(arrays)
    centre = np.concatenate([a.reshape(a.shape[0], -1).T for a in arrays]).mean(axis=0)
    projected = [_project(a, basis, centre) for a in arrays]
    pooled = np.concatenate(projected)
    lo, hi = np.percentile(pooled, percentile, axis=0), np.percentile(pooled, 100 - percentile, axis=0)
    return [_stretch(p, lo, hi, a.shape[1:]) for p, a in zip(projected, arrays)]


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
