"""Geometric crops and photometric augmentation for triplet images.

The photometric changes imitate what the network must become invariant to beyond the real
seasonal pairs: exposure and gamma (dusk, night), colour temperature (sodium lamps, overcast),
sensor noise and defocus. Each role image is augmented independently.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..features.preprocess import equalise_exposure
from .config import AugmentSection


def load_rgb(path: str) -> np.ndarray:
    """Image file → H×W×3 uint8 RGB (grey files are replicated)."""
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        from .manifest import ManifestError

        raise ManifestError(f"{path}: unreadable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def fit_scale(height: int, width: int, min_height: int, crop: tuple[int, int]) -> float:
    """Scale that makes an image at least ``min_height`` tall and at least the crop in both sides."""
    crop_h, crop_w = crop
    return max(min_height / height, crop_h / height, crop_w / width)


def resize(image: np.ndarray, scale: float) -> np.ndarray:
    if abs(scale - 1.0) < 1e-6:
        return image
    h, w = image.shape[:2]
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, size, interpolation=interp)


def crop_window(shape: tuple[int, int], crop: tuple[int, int], rng: np.random.Generator) -> tuple[int, int]:
    """Random top-left corner (y, x) of a crop inside an image of ``shape`` (h, w)."""
    h, w = shape
    return int(rng.integers(0, h - crop[0] + 1)), int(rng.integers(0, w - crop[1] + 1))


def photometric(image: np.ndarray, cfg: AugmentSection, rng: np.random.Generator) -> np.ndarray:
    """uint8 RGB → float32 RGB in [0, 1] with random gamma, darkening, colour shift, blur, noise."""
    out = image.astype(np.float32) / 255.0
    if not cfg.enabled:
        return out
    if rng.random() < 0.5:
        lo, hi = (float(v) for v in cfg.gamma)
        out = out ** float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    if rng.random() < 0.3:
        lo, hi = (float(v) for v in cfg.darken)
        out = out * float(rng.uniform(lo, hi))
    if cfg.colour_temperature > 0 and rng.random() < 0.5:
        t = float(rng.uniform(-cfg.colour_temperature, cfg.colour_temperature))
        out = out * np.array([1.0 + t, 1.0, 1.0 - t], dtype=np.float32)
    if cfg.blur_sigma > 0 and rng.random() < 0.2:
        out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.3, cfg.blur_sigma)))
    if cfg.noise_std > 0 and rng.random() < 0.3:
        out = out + rng.normal(0.0, rng.uniform(0.0, cfg.noise_std), out.shape).astype(np.float32)
    return np.clip(out, 0.0, 1.0)


def scale_input(image: np.ndarray, scaling: str) -> np.ndarray:
    """Apply the model's input convention to a float image in [0, 1] (see features.preprocess)."""
    if scaling in ("max", "exposure"):
        peak = float(image.max())
        if peak > 0:
            image = image / peak
    if scaling == "exposure":
        image = equalise_exposure(image)
    return image
