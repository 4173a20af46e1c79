"""`dejavu-ros build-map --robotcar-seasons` on a synthetic RobotCar Seasons folder."""
import json

import torch

from dejavu_ros.cli.main import main
from dejavu_ros.features.checkpoint import save_checkpoint
from dejavu_ros.features.dvf import DVF, DVFConfig
from dejavu_ros.map.store import KeyframeMap

from robotcar_support import make_seasons


def test_reference_condition_becomes_a_map(tmp_path, capsys):
    xs = make_seasons(tmp_path / "seasons")
    torch.manual_seed(0)
    model = save_checkpoint(DVF(DVFConfig.light()), tmp_path / "m.safetensors")
    args = ["build-map", "--robotcar-seasons", str(tmp_path / "seasons"), "--condition", "overcast-reference",
            "--camera", "rear", "--out", str(tmp_path / "map.db"), "--model", str(model), "--json",
            "--keyframes.min_distance_m", "5"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["frames_read"] == len(xs["overcast-reference"])
    with KeyframeMap.open(tmp_path / "map.db") as kmap:
        assert len(kmap) == summary["keyframes_added"] >= 5
        _, positions, _ = kmap.load_poses()
        # the synthetic poses put the camera at (x, x/2, 2)
        assert all(abs(p[1] - 0.5 * p[0]) < 1e-6 and p[2] == 2.0 for p in positions)
        assert kmap.get(kmap.ids()[0]).camera_k[0, 0] > 0
    assert main(args) == 2  # the map exists now: refused, not overwritten
    assert "already exists" in capsys.readouterr().err


def test_unknown_condition_and_camera_are_clear_errors(tmp_path, capsys):
    make_seasons(tmp_path / "seasons")
    base = ["build-map", "--robotcar-seasons", str(tmp_path / "seasons"), "--out", str(tmp_path / "x.db")]
    assert main(base + ["--condition", "summer"]) == 2
    assert "no condition 'summer'" in capsys.readouterr().err
    assert main(base + ["--camera", "front"]) == 2
    assert "no camera 'front'" in capsys.readouterr().err
