"""The one configuration schema of dejavu_ros.

Each stage declares its own section next to its code (``features/config.py``,
``matching/config.py``, ...); this module composes them. ROS parameters (dotted names such as
``matching.ratio``), ``config/relocalize.yaml`` and the CLI's ``--section.name`` flags are all
derived from :class:`DejavuConfig` by :mod:`dejavu_ros.schema`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import schema
from .features.config import FeatureConfig
from .map.config import KeyframeConfig
from .matching.config import MatchingConfig
from .relocalization.config import EngineConfig, TrustConfig
from .schema import ConfigError, param
from .similarity.config import SimilarityConfig


@dataclass
class NodeConfig:
    """Settings only the ROS node reads (topics are remapped, not configured)."""

    map_path: str = param("", "Keyframe map (.db) to localize against / append to")
    mode: str = param("continuous", "continuous = every frame; on_demand = only on ~/relocalize_once",
                      choices=("continuous", "on_demand"))
    map_mode: str = param("localize", "localize = read-only map; map = append keyframes from odometry",
                          choices=("localize", "map"))
    image_transport: str = param("raw", "raw = sensor_msgs/Image on 'image'; compressed = "
                                 "CompressedImage on 'image/compressed'", choices=("raw", "compressed"))
    reliable_qos: bool = param(False, "Subscribe to images with reliable QoS instead of sensor-data")
    max_rate: float = param(0.0, "Process at most this many frames per second (0 = as fast as possible)",
                            low=0.0, high=1000.0, dynamic=True)
    pose_tolerance_s: float = param(0.05, "Mapping mode: max |image stamp - pose stamp|", low=0.0, high=10.0)
    map_frame: str = param("map", "Frame of published candidate poses and markers")
    diagnostics_period_s: float = param(1.0, "Period of /diagnostics", low=0.05, high=60.0)
    latency_warn_s: float = param(1.0, "Diagnostics WARN above this processing latency", low=0.0,
                                  high=3600.0, dynamic=True)
    allow_model_mismatch: bool = param(False, "Open maps built with another model (results degrade)")
    use_odometry: bool = param(True, "Localize mode: subscribe to 'odom' and give route localization the distance "
                               "travelled between frames (only relative motion is used: any odometry frame)")
    publish_initialpose: bool = param(False, "Publish trusted relocalizations as the robot base's pose on "
                                      "'initialpose' (what AMCL and nav2 take); needs TF from the camera to "
                                      "node.base_frame")
    initialpose_min_confidence: float = param(0.97, "...only when the calibrated confidence reaches this",
                                              low=0.0, high=1.0, dynamic=True)
    publish_tf: bool = param(False, "Publish map → node.odom_frame from trusted relocalizations (AMCL style); needs "
                             "TF from node.odom_frame to the camera")
    base_frame: str = param("base_link", "Robot base frame (the pose on 'initialpose' is its pose)")
    odom_frame: str = param("odom", "Odometry frame of the published map → odom transform")
    tf_period_s: float = param(0.1, "The latest map → odom is re-published this often", low=0.01, high=10.0)
    relocalize_frames: int = param(20, "~/relocalize: frames it tries before giving up", low=1, high=100000,
                                   dynamic=True)


@dataclass
class DejavuConfig:
    features: FeatureConfig = field(default_factory=FeatureConfig)
    similarity: SimilarityConfig = field(default_factory=SimilarityConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    trust: TrustConfig = field(default_factory=TrustConfig)
    matching: MatchingConfig = field(default_factory=MatchingConfig)
    keyframes: KeyframeConfig = field(default_factory=KeyframeConfig)
    node: NodeConfig = field(default_factory=NodeConfig)


def specs() -> dict[str, schema.ParamSpec]:
    """Every parameter by dotted name."""
    return schema.spec_map(DejavuConfig)


def load_yaml(path: str | Path, base: DejavuConfig | None = None) -> DejavuConfig:
    """Read a ROS-style params file (``/**: ros__parameters: ...``) or a plain nested mapping."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    body = _ros_parameters(data)
    try:
        return schema.apply_flat(base or DejavuConfig(), schema.flatten_nested(body))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _ros_parameters(data: dict[str, Any]) -> dict[str, Any]:
    for value in data.values():
        if isinstance(value, dict) and "ros__parameters" in value:
            return value["ros__parameters"] or {}
    return data


def to_yaml_dict(cfg: DejavuConfig) -> dict[str, Any]:
    return {"/**": {"ros__parameters": schema.to_nested(cfg)}}


def resolve(yaml_path: str | Path | None = None, overrides: dict[str, Any] | None = None,
            labels: dict[str, str] | None = None) -> DejavuConfig:
    """Defaults ← YAML file ← explicit overrides (CLI flags, named in errors by ``labels``), validated."""
    cfg = load_yaml(yaml_path) if yaml_path else DejavuConfig()
    if overrides:
        cfg = schema.apply_flat(cfg, overrides, labels)
    return schema.validate(cfg)
