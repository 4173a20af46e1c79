"""Evaluation-time image sizing: every image at a common, modest scale before DVF.

Tiny frames (Nordland's 64×32) are upsampled until DVF's 128 px minimum holds and large ones are
capped, so all-pairs evaluation of a thousand images stays affordable on a CPU.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..features.dvf import MIN_SIDE


def eval_scale(height: int, width: int, min_height: int = 128, max_side: int = 320) -> float:
    """Scale so that height ≥ min_height and both sides ≥ 128, then the longer side ≤ max_side."""
    scale = max(min_height / height, MIN_SIDE / height, MIN_SIDE / width)
    if max_side and max(height, width) * scale > max_side:
        scale = max(max_side / max(height, width), MIN_SIDE / min(height, width))
    return scale


def prepare_image(rgb: np.ndarray, min_height: int = 128, max_side: int = 320) -> np.ndarray:
    """Resize an H×W×3 uint8 image to the evaluation scale (see :func:`eval_scale`)."""
    h, w = rgb.shape[:2]
    scale = eval_scale(h, w, min_height, max_side)
    if abs(scale - 1.0) < 1e-6:
        return rgb
    size = (max(MIN_SIDE, int(round(w * scale))), max(MIN_SIDE, int(round(h * scale))))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
