"""Image → network input, as the authors prepare it.

The authors divide each image by its own maximum instead of a fixed 255: a dark night frame is
stretched towards the day frame's range before the network sees it. No mean/std normalisation.
A night street lit by lamps keeps its maximum near white, so that stretch does nothing for it;
``exposure`` adds a global gamma (≤ 1) that lifts an under-exposed frame's mean to mid-grey: one
number per image, the order of intensities is kept, only the tone curve changes; frames already
bright enough are left alone. A model trained with ``colour: grey`` sees the luma in all three
channels, applied first, the same way in training and inference.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DejavuError
from .dvf import COLOURS, MIN_SIDE, SCALINGS

#: ``exposure`` scaling: the mean a dark frame is lifted to, and the gamma range (≤ 1: never darken)
EXPOSURE_TARGET_MEAN = 0.5
EXPOSURE_GAMMA_RANGE = (0.25, 1.0)
#: Rec. 601 luma weights of R, G, B (OpenCV's RGB → grey)
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


class ImageError(DejavuError):
    """An image array the feature stage cannot use."""


def check_rgb(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Accept H×W×3 uint8 (or H×W grayscale, replicated); refuse anything else clearly."""
    if not isinstance(image, np.ndarray):
        raise ImageError(f"{name}: expected a numpy array, got {type(image).__name__}")
    if image.dtype not in (np.uint8, np.uint16) and image.dtype.kind != "f":
        raise ImageError(f"{name}: unsupported pixel type {image.dtype} (expected uint8, uint16 or float)")
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        raise ImageError(f"{name}: contains NaN or Inf pixel values")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ImageError(f"{name}: expected H×W×3 RGB, got shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageError(f"{name}: zero-size image {image.shape}")
    if image.shape[2] == 4:
        image = image[:, :, :3]
    return image


def equalise_exposure(image, target: float = EXPOSURE_TARGET_MEAN):
    """One image in [0, 1] (numpy or torch) → ``image ** gamma`` whose mean is close to ``target``.

    gamma = log(target) / log(mean), limited to EXPOSURE_GAMMA_RANGE: a nearly black frame is not
    blown up into noise and a bright frame is not darkened. Training and inference both call
    this, so a model sees the same tones in both.
    """
    mean = float(image.mean())
    if not 0.0 < mean < 1.0:
        return image
    low, high = EXPOSURE_GAMMA_RANGE
    gamma = float(min(max(np.log(target) / np.log(mean), low), high))  # a Python float keeps float32
    return image.clip(0.0, 1.0) ** gamma


def grey_rgb(image: np.ndarray) -> np.ndarray:
    """H×W×3 → H×W×3 float32 whose three channels all hold the luma (the pixel range is kept)."""
    luma = np.asarray(image, np.float32) @ LUMA
    return np.repeat(luma[:, :, None], 3, axis=2)


def to_tensor(image: np.ndarray, scaling: str = "max", colour: str = "rgb") -> torch.Tensor:
    """H×W×3 array → 1×3×H×W float32 in [0, 1].

    ``scaling="max"`` divides by the image's own maximum when that exceeds 1 (the authors'
    convention; a black frame stays black); ``"exposure"`` does the same, then
    :func:`equalise_exposure`; ``"fixed"`` divides 8-bit data by 255. ``colour="grey"``
    first replaces the colour by the luma (:func:`grey_rgb`).
    """
    if scaling not in SCALINGS:
        raise ValueError(f"unknown scaling {scaling!r} (expected one of {SCALINGS})")
    if colour not in COLOURS:
        raise ValueError(f"unknown colour {colour!r} (expected one of {COLOURS})")
    image = check_rgb(image)
    full_scale = 65535.0 if image.dtype == np.uint16 else 255.0
    if colour == "grey":
        image = grey_rgb(image)
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float()
    if scaling == "fixed":
        return (tensor / full_scale)[None]
    peak = tensor.max()
    if peak > 1:
        tensor = tensor / peak
    if scaling == "exposure":
        tensor = equalise_exposure(tensor)
    return tensor[None]


def resize(batch: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a B×C×H×W batch to (width, height), bilinear with align_corners=True (authors' demo)."""
    width, height = size
    return F.interpolate(batch, size=(height, width), mode="bilinear", align_corners=True)


def limit_size(rgb: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Downscale so that the longer side is at most ``max_side`` (0 = never); returns (image, scale).

    ``scale`` is new/old size (1.0 when unchanged). Area interpolation avoids aliasing. Positions
    found in the result go back to the original image with :func:`to_original_xy`.
    """
    import cv2

    height, width = rgb.shape[:2]
    longest = max(height, width)
    if max_side <= 0 or longest <= max_side:
        return rgb, 1.0
    scale = max_side / longest
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), scale


def to_original_xy(xy: np.ndarray, resized: tuple[int, int], original: tuple[int, int]) -> np.ndarray:
    """Pixel positions (K, 2) in an image resized by :func:`limit_size` → the original image's pixels.

    ``resized`` / ``original`` are (width, height). The mapping is the pixel-centre one of
    ``cv2.resize`` (x + ½ scales), per axis, because rounding makes the two axes' scales differ.
    """
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    if tuple(resized) == tuple(original):
        return xy.astype(np.float32)
    factor = np.asarray(original, np.float64) / np.asarray(resized, np.float64)
    return ((xy + 0.5) * factor - 0.5).astype(np.float32)


def to_resized_xy(xy: np.ndarray, original: tuple[int, int], resized: tuple[int, int]) -> np.ndarray:
    """Inverse of :func:`to_original_xy`."""
    return to_original_xy(xy, original, resized)


def pad_to_min_side(batch: torch.Tensor, min_side: int = MIN_SIDE) -> tuple[torch.Tensor, tuple[int, int]]:
    """Replicate-pad (edge pixels repeated) the bottom/right so both sides reach ``min_side``.

    Returns the padded batch and the original (height, width) so the output can be cropped
    back: descriptors of real pixels keep their positions.
    """
    height, width = batch.shape[-2:]
    pad_h, pad_w = max(0, min_side - height), max(0, min_side - width)
    if pad_h or pad_w:
        batch = F.pad(batch, (0, pad_w, 0, pad_h), mode="replicate")
    return batch, (height, width)
