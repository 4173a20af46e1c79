"""Models and maps the engine tests share."""
from __future__ import annotations

import pytest

from dejavu_ros.config import DejavuConfig
from dejavu_ros.features.config import FeatureConfig
from dejavu_ros.features.extractor import FeatureExtractor
from dejavu_ros.resources import default_model_path


def trained_extractor() -> FeatureExtractor:
    """The shipped default model; tests that need trained features skip until it exists."""
    if not default_model_path().is_file():
        pytest.skip("default model models/dvf_default.safetensors not shipped yet")
    return FeatureExtractor.from_config(FeatureConfig(device="cpu"))


def any_extractor() -> FeatureExtractor:
    """The default model when shipped, else a seeded untrained network (same-condition checks only)."""
    if default_model_path().is_file():
        return FeatureExtractor.from_config(FeatureConfig(device="cpu"))
    return FeatureExtractor.random(seed=0)


def config_for(map_path) -> DejavuConfig:
    cfg = DejavuConfig()
    cfg.node.map_path = str(map_path)
    cfg.features.device = "cpu"
    return cfg
