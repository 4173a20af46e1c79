"""Offline replay end to end: bag written here → build-map → relocalize → results bag read back."""
import json

import numpy as np
import pytest
import torch

from dejavu_ros.cli.main import main
from dejavu_ros.demo.run import IMAGE_TOPIC, INFO_TOPIC, ODOM_TOPIC, write_traversal
from dejavu_ros.demo.world import make_street
from dejavu_ros.features.checkpoint import save_checkpoint
from dejavu_ros.features.dvf import DVF, DVFConfig
from dejavu_ros.io.bag_reader import BagReader
from dejavu_ros.output.messages import RESULT_TOPICS, cloud_to_array


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    root = tmp_path_factory.mktemp("replay")
    street = make_street(40.0, seed=3)
    write_traversal(root / "day", street, np.arange(0.0, 30.0, 1.0), "day", 1)
    write_traversal(root / "query", street, np.arange(0.5, 30.0, 4.0), "day", 2)
    torch.manual_seed(0)
    model = save_checkpoint(DVF(DVFConfig.light()), root / "model.safetensors")
    return root, model


def test_build_map_then_relocalize_writes_the_node_topics(bags, capsys):
    root, model = bags
    assert main(["build-map", str(root / "day"), "--image-topic", IMAGE_TOPIC, "--odom-topic", ODOM_TOPIC,
                 "--camera-info-topic", INFO_TOPIC, "--out", str(root / "map.db"), "--model", str(model),
                 "--json"]) == 0
    built = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert built["frames_read"] == 30 and 10 <= built["keyframes_added"] <= 16  # one every 2 m
    assert main(["map-info", str(root / "map.db"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["keyframes"] == built["keyframes_added"]

    code = main(["relocalize", str(root / "query"), "--map", str(root / "map.db"), "--image-topic", IMAGE_TOPIC,
                 "--camera-info-topic", INFO_TOPIC, "--gt-topic", ODOM_TOPIC, "--model", str(model),
                 "--out", str(root / "results.mcap"), "--report", str(root / "frames.jsonl"),
                 "--summary-json", str(root / "summary.json")])
    assert code == 0
    printed = capsys.readouterr().out
    assert "frames: 8" in printed and "p50" in printed and "recall@5m" in printed
    summary = json.loads((root / "summary.json").read_text())
    assert summary["frames"] == 8 and summary["ground_truth_frames"] == 8
    # an untrained network under the calibration shipped for the default model: the user is told
    assert "trust calibration was fitted on DVF model" in summary["trust_mismatch"]
    assert f"WARNING: {summary['trust_mismatch']}" in printed
    assert len((root / "frames.jsonl").read_text().splitlines()) == 8

    with BagReader(root / "query") as bag:
        image_stamps = [m.stamp_ns for m in bag.messages([IMAGE_TOPIC])]
    with BagReader(root / "results") as bag:  # --out results.mcap names the bag folder "results"
        topics = bag.topics
        for name, msgtype in RESULT_TOPICS.items():
            if name != "pose" or summary["relocalized"]:
                assert topics[f"/relocalizer/{name}"] == msgtype
        by_topic = {}
        for m in bag.messages():
            by_topic.setdefault(m.topic, []).append(m)
    for name in ("candidates", "candidate_scores", "matches", "debug_image", "map_markers"):
        msgs = by_topic[f"/relocalizer/{name}"]
        assert [m.stamp_ns for m in msgs] == image_stamps, name
    first = by_topic["/relocalizer/candidate_scores"][0].msg
    assert first.header.frame_id == "map"
    points = cloud_to_array(first)
    assert list(points["rank"]) == sorted(points["rank"]) and len(points) >= 1
    assert len(by_topic["/relocalizer/candidates"][0].msg.poses) == len(points)


def test_missing_topic_lists_the_topics_in_the_bag(bags, capsys):
    root, model = bags
    assert main(["build-map", str(root / "day"), "--image-topic", "/nope", "--odom-topic", ODOM_TOPIC,
                 "--out", str(root / "x.db"), "--model", str(model)]) == 2
    err = capsys.readouterr().err
    assert "'/nope'" in err and IMAGE_TOPIC in err and ODOM_TOPIC in err
    assert not (root / "x.db").exists()


def test_existing_map_is_not_overwritten(bags, capsys, tmp_path):
    root, model = bags
    target = tmp_path / "keep.db"
    target.write_bytes(b"precious")
    assert main(["build-map", str(root / "day"), "--image-topic", IMAGE_TOPIC, "--odom-topic", ODOM_TOPIC,
                 "--out", str(target), "--model", str(model)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert target.read_bytes() == b"precious"


def test_truncated_bag_processes_frames_before_the_damage(bags, capsys, tmp_path):
    root, model = bags
    if not (root / "map.db").exists():
        pytest.skip("needs the map of the first test")
    (storage,) = (root / "query").glob("*.mcap")  # a rosbag2 bag is a folder
    data = storage.read_bytes()
    cut = tmp_path / "cut.mcap"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    assert main(["relocalize", str(cut), "--map", str(root / "map.db"), "--image-topic", IMAGE_TOPIC,
                 "--model", str(model), "--no-debug-images"]) == 0
    out = capsys.readouterr().out
    frames = int(out.split("frames: ")[1].split()[0])
    assert 1 <= frames < 8 and "bag damaged" in out
