"""The model files in models/ belong together: each keypoint head was trained on the map of the DVF
model it is documented with (models/README.md), so pairing them as documented gives no warning."""
from __future__ import annotations

import dataclasses
import warnings

import pytest

from dejavu_ros.features.config import FeatureConfig
from dejavu_ros.features.extractor import FeatureExtractor
from dejavu_ros.features.keypoint_head import check_keypoint_head, load_head
from dejavu_ros.matching import MatchingConfig
from dejavu_ros.resources import models_dir

PAIRS = {  # DVF model → its keypoint head ("" = the shipped defaults)
    "shipped": ("", ""),
    "candidate arm D": ("candidates/dvf_arm_d.safetensors", "candidates/keypoint_head_arm_d.safetensors"),
}


@pytest.mark.parametrize("name", list(PAIRS))
def test_each_keypoint_head_was_trained_on_its_models_map(name):
    model, head = (str(models_dir() / p) if p else "" for p in PAIRS[name])
    extractor = FeatureExtractor.from_config(FeatureConfig(model=model))
    _, meta = load_head(head or models_dir() / "keypoint_head.safetensors")
    assert meta["backbone_fingerprint"] == extractor.fingerprint
    cfg = dataclasses.replace(MatchingConfig(), keypoints="dvf_head", keypoint_head=head)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_keypoint_head(cfg, extractor)


def test_the_candidate_is_not_the_shipped_model():
    shipped = FeatureExtractor.from_config(FeatureConfig()).fingerprint
    candidate = FeatureExtractor.from_config(
        FeatureConfig(model=str(models_dir() / PAIRS["candidate arm D"][0]))).fingerprint
    assert shipped != candidate
