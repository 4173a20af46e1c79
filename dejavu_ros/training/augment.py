"""Geometric crops and photometric augmentation for triplet images.

The photometric changes imitate what the network must become invariant to beyond the real
seasonal pairs: exposure and gamma (dusk, night), colour temperature (sodium lamps, overcast),
sensor noise and defocus. Each role image is augmented independently. ``low_light`` goes further
for night: the training sets hold little real night, and what makes a night frame hard after the
exposure lift is what the lift amplifies (noise, lost 8-bit levels) and what lamps add.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..features.preprocess import equalise_exposure, grey_rgb
from .config import AugmentSection


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
    if cfg.low_light > 0 and rng.random() < cfg.low_light:
        out = simulate_low_light(np.clip(out, 0.0, 1.0), rng)
    return np.clip(out, 0.0, 1.0)


def simulate_low_light(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A float RGB frame in [0, 1] as a camera would record it at night (still in [0, 1], 8-bit levels).

    The scene gets 3-20 % of the light, less towards the top (no sky light; headlights reach the
    road), plus a few warm lamps that light their surroundings; photon (shot) noise grows with the
    signal, read noise does not; the result is quantised to 8 bits as a camera stores it.
    """
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    floor = float(rng.uniform(0.05, 0.4))
    light = floor + (1.0 - floor) * (yy / max(h - 1, 1)) ** float(rng.uniform(0.5, 2.0))
    lamps = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(0, 4))):
        sigma = float(rng.uniform(2.0, 0.1 * max(h, w)))
        lamps += float(rng.uniform(0.5, 3.0)) * np.exp(
            -((yy - rng.uniform(0, h)) ** 2 + (xx - rng.uniform(0, w)) ** 2) / (2 * sigma ** 2))
    warm = np.array([1.0, 0.8, 0.5], np.float32)
    cast = warm ** float(rng.uniform(0.0, 1.0))  # sodium / halogen light over the whole scene
    out = image * float(rng.uniform(0.03, 0.2)) * (light + lamps)[..., None] * cast
    out = out + 0.3 * np.clip(lamps, 0.0, 1.0)[..., None] ** 4 * warm  # the lamp itself, near saturation
    shot, read = float(rng.uniform(0.0005, 0.003)), float(rng.uniform(0.002, 0.01))
    out = out + rng.normal(0.0, 1.0, out.shape).astype(np.float32) * np.sqrt(shot * np.clip(out, 0, None) + read ** 2)
    return (np.round(np.clip(out, 0.0, 1.0) * 255.0) / 255.0).astype(np.float32)


def scale_input(image: np.ndarray, scaling: str, colour: str = "rgb") -> np.ndarray:
    """Apply the model's input convention to a float image in [0, 1] (see features.preprocess)."""
    if colour == "grey":
        image = grey_rgb(image)
    if scaling in ("max", "exposure"):
        peak = float(image.max())
        if peak > 0:
            image = image / peak
    if scaling == "exposure":
        image = equalise_exposure(image)
    return image
