"""`dejavu-ros demo`: the README's main job, shortened."""
import json

import pytest

from dejavu_ros.cli.main import main
from dejavu_ros.io.bag_reader import BagReader
from dejavu_ros.resources import default_model_path

pytestmark = pytest.mark.skipif(not default_model_path().is_file(), reason="default model not shipped")


def test_day_query_against_a_day_map_relocalizes(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--length", "45", "--condition", "day"]) == 0
    printed = capsys.readouterr().out
    assert "recall@5m" in printed and "keyframes from" in printed
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["frames"] == 15 and summary["ground_truth_frames"] == 15
    assert summary["recall@5m"] >= 80.0  # same appearance: the pipeline itself must work
    assert summary["map"]["keyframes_added"] >= 15
    for name in ("trajectory.png", "frames.jsonl", "map.db"):
        assert (tmp_path / name).stat().st_size > 0
    with BagReader(tmp_path / "results.mcap") as bag:
        assert "/relocalizer/pose" in bag.topics


def test_night_run_reports_whatever_recall_it_gets(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--length", "30"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert 0.0 <= summary["recall@5m"] <= 100.0 and summary["frames"] == 10
    # a verified pose must not be far off: false relocalizations are worse than none
    assert all(r["position_error_m"] is None or r["position_error_m"] <= 10.0
               for r in map(json.loads, (tmp_path / "frames.jsonl").read_text().splitlines()))
