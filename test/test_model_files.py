"""The model files in models/ belong together: each keypoint head was trained on the map of the DVF
model it is documented with (models/README.md)."""
from __future__ import annotations

import pytest

from dejavu_ros.features.config import FeatureConfig
from dejavu_ros.features.extractor import FeatureExtractor
from dejavu_ros.features.keypoint_head import load_head, resolve_head_path
from dejavu_ros.resources import models_dir

PAIRS = {  # DVF model → its keypoint head ("" = the shipped defaults)
    "shipped": ("", ""),
    "candidate arm D": ("candidates/dvf_arm_d.safetensors", "candidates/keypoint_head_arm_d.safetensors"),
    "candidate arm G": ("candidates/dvf_arm_g.safetensors", "candidates/keypoint_head_arm_g.safetensors"),
}


def _path(name: str) -> str:
    return str(models_dir() / name) if name else ""


@pytest.mark.parametrize("name", list(PAIRS))
def test_each_keypoint_head_was_trained_on_its_models_map(name):
    model, head_file = (_path(p) for p in PAIRS[name])
    extractor = FeatureExtractor.from_config(FeatureConfig(model=model))
    head, meta = load_head(resolve_head_path(head_file))
    # the two conditions check_keypoint_head warns or fails on, asserted directly (its check is cached per process)
    assert meta["backbone_fingerprint"] == extractor.fingerprint
    assert head.descriptor_dim == extractor.descriptor_dim


def test_the_candidates_are_not_the_shipped_model_and_say_how_they_are_fed():
    prints = {k: FeatureExtractor.from_config(FeatureConfig(model=_path(model))) for k, (model, _) in PAIRS.items()}
    assert len({e.fingerprint for e in prints.values()}) == len(PAIRS)
    assert [k for k, e in prints.items() if e.model_config.colour == "grey"] == ["candidate arm G"]
