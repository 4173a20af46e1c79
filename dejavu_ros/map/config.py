"""Settings of keyframe selection when building a map."""
from __future__ import annotations

from dataclasses import dataclass

from ..schema import param


@dataclass
class KeyframeConfig:
    min_distance_m: float = param(2.0, "New keyframe after moving this far (0 = off)", low=0.0, high=1e4)
    min_angle_deg: float = param(15.0, "…or after turning this much (0 = off)", low=0.0, high=360.0)
    max_interval_s: float = param(5.0, "…or after this long while no pose is known (0 = never)",
                                  low=0.0, high=1e5)
    novelty_cx: float = param(0.0, "…or when CX to the last keyframe falls below this (0 = off)",
                              low=0.0, high=1.0)
    thumbnail_side: int = param(160, "Longer side of the stored JPEG thumbnail (px)", low=16, high=1024)
    thumbnail_quality: int = param(80, "JPEG quality of the stored thumbnail", low=10, high=100)
    frame_id: str = param("map", "Frame of keyframe poses")
