"""Bad input: parameters — flags, YAML files and node parameter changes are checked by the one schema."""
from __future__ import annotations

import pytest
from bad_input_support import (
    ROS_PARAMS,
    Case,
    case_params,
    check_case,
    no_map_written,
    write_text,
)

from dejavu_ros.config import DejavuConfig
from dejavu_ros.ros.parameters import check_changes
from dejavu_ros.schema import ConfigError


def build_with_params(text: str):
    def action(env):
        params = write_text("params.yaml", text)(env)
        return env.build(env.a.bag, "--params", params)
    return action


def node_change(changes: dict):
    def action(env):
        env.scratch["cfg"] = DejavuConfig()
        return check_changes(env.scratch["cfg"], changes)
    return action


def node_config_unchanged(env, _outcome=None):
    cfg = env.scratch["cfg"]
    assert cfg == DejavuConfig()  # a refused change leaves the running config as it was
    assert check_changes(cfg, {"matching.ratio": 0.8}).matching.ratio == 0.8


CASES = [
    Case("param-flag-out-of-range", lambda e: e.build(e.a.bag, "--matching.ratio", "1.5"), 2,
         r"--matching\.ratio: 1\.5 is above the maximum 1\.0", after=no_map_written),
    Case("param-flag-wrong-type", lambda e: e.build(e.a.bag, "--features.max_side", "big"), 2,
         r"--features\.max_side: expected int, got 'big'", after=no_map_written),
    Case("param-flag-bad-choice", lambda e: e.build(e.a.bag, "--features.precision", "fp64"), 2,
         r"--features\.precision: 'fp64' is not one of \['fp32', 'fp16', 'bf16'\]"),
    Case("param-flag-nan", lambda e: e.build(e.a.bag, "--keyframes.min_distance_m", "nan"), 2,
         r"--keyframes\.min_distance_m: expected float, got nan"),
    Case("param-keypoint-head-missing", lambda e: e.build(e.a.bag, "--matching.keypoints", "dvf_head",
                                                                "--matching.keypoint_head", e.tmp / "no_head.st"),
         2, r"keypoint head not found: .*no_head\.st", after=no_map_written),
    Case("param-keypoint-head-not-a-head",
         lambda e: e.build(e.a.bag, "--matching.keypoints", "dvf_head",
                           "--matching.keypoint_head", write_text("head.safetensors", "junk")(e)), 2,
         r"head\.safetensors: not a readable safetensors file", after=no_map_written),
    Case("param-overlap-head-missing", lambda e: e.relocalize("--engine.overlap_head", e.tmp / "no_head.st"),
         2, r"overlap head not found: .*no_head\.st"),
    Case("param-overlap-head-not-a-head",
         lambda e: e.relocalize("--engine.overlap_head", write_text("box.safetensors", "junk")(e)), 2,
         r"box\.safetensors: not a readable safetensors file"),
    Case("param-yaml-out-of-range", build_with_params(ROS_PARAMS.format("ratio: 3.0")), 2,
         r"params\.yaml: parameter 'matching\.ratio': 3\.0 is above the maximum", after=no_map_written),
    Case("param-yaml-unknown-name", build_with_params(ROS_PARAMS.format("ratoi: 0.5")), 2,
         r"params\.yaml: unknown parameter\(s\): matching\.ratoi"),
    Case("param-yaml-not-a-mapping", build_with_params("- 1\n- 2\n"), 2, r"params\.yaml: expected a mapping"),
    Case("param-yaml-invalid", build_with_params("[1, 2\n"), 2, r"params\.yaml: not valid YAML"),
    Case("param-yaml-missing", lambda e: e.build(e.a.bag, "--params", e.tmp / "none.yaml"), 2,
         r"config file not found: .*none\.yaml"),
    Case("param-node-out-of-range", node_change({"matching.ratio": 1.5}), ConfigError,
         r"parameter 'matching\.ratio': 1\.5 is above the maximum 1\.0", after=node_config_unchanged),
    Case("param-node-read-only", node_change({"features.max_side": 320}), ConfigError,
         r"parameter 'features\.max_side' cannot change while the node runs", after=node_config_unchanged),
    Case("param-node-wrong-type", node_change({"engine.shortlist_k": 2.5}), ConfigError,
         r"parameter 'engine\.shortlist_k': expected int, got 2\.5", after=node_config_unchanged),
    Case("param-node-nan", node_change({"node.max_rate": float("nan")}), ConfigError,
         r"parameter 'node\.max_rate': expected float, got nan", after=node_config_unchanged),
    Case("param-node-bad-choice", node_change({"matching.direction": "sideways"}), ConfigError,
         r"parameter 'matching\.direction': 'sideways' is not one of", after=node_config_unchanged),
]


@pytest.mark.parametrize("case", case_params(CASES))
def test_bad_input(case, assets, tmp_path):
    check_case(case, assets, tmp_path)
