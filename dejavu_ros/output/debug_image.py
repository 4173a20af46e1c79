"""The debug view: the query and the keyframe the result is about, side by side, with its matches.

The keyframe is :attr:`RelocalizationResult.keyframe_id` — the verified one when there is one —
the same keyframe the banner, the report and ``~/matches`` speak of. Lines are coloured red → green
by match score when the frame was relocalized, grey when the trust decision refused the place.
Kept apart from the message builders because drawing costs milliseconds: the node renders it
only while someone subscribes to ``~/debug_image``.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..relocalization.result import RelocalizationResult

_BANNER_PX = 22
_PLACEHOLDER_GRAY = 60


def render_debug_image(query_rgb: np.ndarray, result: RelocalizationResult,
                       keyframe_rgb: np.ndarray | None = None,
                       keyframe_size: tuple[int, int] | None = None, max_height: int = 360) -> np.ndarray:
    """RGB uint8 image: banner on top, query (left) and keyframe thumbnail (right), inlier lines.

    ``keyframe_rgb`` is the thumbnail of ``result.keyframe_id``; ``keyframe_size`` (width, height) is the
    size of the image the keyframe's pixel coordinates refer to. When unknown, the keyframe is
    assumed to come from the same camera as the query (same longer side), which holds for maps
    built with the camera that relocalizes.
    """
    q_h, q_w = query_rgb.shape[:2]
    q_scale = min(1.0, max_height / q_h)
    left = _resize(query_rgb, q_scale)
    panel_h = left.shape[0]

    shown = result.keyframe_id
    if keyframe_rgb is not None:
        right = _resize(keyframe_rgb, panel_h / keyframe_rgb.shape[0])
        if keyframe_size is None:
            longer = max(q_w, q_h)
            k_scale = max(right.shape[:2]) / longer
        else:
            k_scale = right.shape[1] / float(keyframe_size[0])
    else:
        right = np.full((panel_h, max(1, left.shape[1] // 2), 3), _PLACEHOLDER_GRAY, dtype=np.uint8)
        _text(right, "no keyframe" if shown is None else f"keyframe {shown}: no thumbnail", 14)
        k_scale = None

    canvas = np.zeros((panel_h + _BANNER_PX, left.shape[1] + right.shape[1], 3), dtype=np.uint8)
    canvas[_BANNER_PX:, :left.shape[1]] = left
    canvas[_BANNER_PX:, left.shape[1]:] = right
    _text(canvas, _banner(result), 16)

    v = result.verification
    if v is not None and k_scale is not None and len(v.query_xy):
        _draw_matches(canvas, v.query_xy, v.map_xy, v.scores, q_scale, k_scale, x_offset=left.shape[1],
                      refused=not result.relocalized)
    return canvas


def render_result(query_rgb: np.ndarray, result: RelocalizationResult, keyframes) -> np.ndarray:
    """The debug view of ``result``; ``keyframes`` answers ``keyframe_thumbnail(id)`` and
    ``keyframe_image_size(id)`` (the engine, or a cache in front of it)."""
    shown = result.keyframe_id
    if shown is None:
        return render_debug_image(query_rgb, result)
    return render_debug_image(query_rgb, result, keyframes.keyframe_thumbnail(shown),
                              keyframes.keyframe_image_size(shown))


def _resize(rgb: np.ndarray, scale: float) -> np.ndarray:
    if abs(scale - 1.0) < 1e-6:
        return np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    return cv2.resize(rgb, size, interpolation=interp)


def _banner(result: RelocalizationResult) -> str:
    parts = [f"{result.status} p={result.confidence:.2f}"]
    shown = result.candidate(result.keyframe_id)
    if shown is not None:
        parts.append(f"kf {shown.keyframe_id} cx {shown.cx_score:.3f}")
    if result.verification is not None:
        kind = result.pose.source if result.pose is not None else "refused"
        parts.append(f"{result.verification.num_inliers} inliers ({kind})")
    total = result.timings_ms.get("total")
    if total is not None:
        parts.append(f"{total:.0f} ms")
    return " | ".join(parts)


def _text(img: np.ndarray, text: str, baseline_y: int) -> None:
    cv2.putText(img, text, (4, baseline_y), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)


def _draw_matches(canvas: np.ndarray, query_xy: np.ndarray, map_xy: np.ndarray, scores: np.ndarray,
                  q_scale: float, k_scale: float, x_offset: int, refused: bool = False) -> None:
    """One line per inlier, coloured from red (score 0) to green (score 1); grey when ``refused``."""
    q = np.asarray(query_xy, dtype=np.float64) * q_scale + (0.0, _BANNER_PX)
    m = np.asarray(map_xy, dtype=np.float64) * k_scale + (x_offset, _BANNER_PX)
    s = np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0)
    for (x0, y0), (x1, y1), score in zip(np.rint(q).astype(int), np.rint(m).astype(int), s):
        color = (140, 140, 140) if refused else (int(255 * (1.0 - score)), int(255 * score), 0)
        cv2.line(canvas, (x0, y0), (x1, y1), color, 1, cv2.LINE_AA)
        cv2.circle(canvas, (x0, y0), 2, color, -1, cv2.LINE_AA)
        cv2.circle(canvas, (x1, y1), 2, color, -1, cv2.LINE_AA)
