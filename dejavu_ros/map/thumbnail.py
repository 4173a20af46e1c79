"""Small JPEG previews stored with each keyframe (for map-info, rviz and debugging)."""
from __future__ import annotations

import cv2
import numpy as np

from .errors import InvalidKeyframeError


def make_thumbnail(rgb: np.ndarray, side: int = 160, quality: int = 80) -> bytes:
    """JPEG bytes of ``rgb`` (H×W×3 uint8) shrunk so its longer side is at most ``side`` px."""
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        shape = getattr(rgb, "shape", None)
        raise InvalidKeyframeError(f"thumbnail source: expected an H×W×3 uint8 RGB image, got {shape}")
    height, width = rgb.shape[:2]
    scale = min(1.0, side / max(height, width))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise InvalidKeyframeError("thumbnail: JPEG encoding failed")
    return buf.tobytes()


def decode_thumbnail(data: bytes) -> np.ndarray | None:
    """RGB uint8 image of a stored thumbnail; None when the keyframe has none."""
    if not data:
        return None
    bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
