"""The trainer's DDP code path with a world of one process on CPU; checkpoints, logs and resume."""
from __future__ import annotations

import csv
import json

import pytest

from dejavu_ros.cli.main import main
from dejavu_ros.features.checkpoint import load_checkpoint, read_metadata, save_checkpoint
from training_support import tiny_model, write_route_manifest

FAST = ["--data.crop_height", "128", "--data.crop_width", "128", "--loss.cx_stride", "8",
        "--data.negative_min_places", "2", "--optim.batch_size", "1", "--validation.grid_max_side", "4",
        "--validation.every_steps", "1", "--no-progress"]


@pytest.mark.slow
def test_train_cli_world_size_one_then_resume(tmp_path, capsys):
    train = write_route_manifest(tmp_path / "train", places=6, size=(128, 128))
    val = write_route_manifest(tmp_path / "val", places=3, size=(128, 128), sequence="heldout")
    init = save_checkpoint(tiny_model(), tmp_path / "init.safetensors")
    out = tmp_path / "run"
    args = ["train", "--manifest", str(train), "--val-manifest", str(val), "--out", str(out),
            "--model.init", str(init), *FAST]
    assert main([*args, "--model.scaling", "exposure", "--model.colour", "grey", "--optim.max_steps", "2"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    last = result["last_validation"]
    assert result["steps"] == 2 and {"m/auc_cross", "m/recall@1", "rule"} <= set(last)  # split "m" (m.csv)
    assert last["rule"] == last["m/recall@1"]  # a route split only: the selection rule is its recall
    for name in ("best.safetensors", "last.safetensors", "last_state.pt", "log.csv", "validation.csv"):
        assert (out / name).is_file(), name
    meta = read_metadata(out / "last.safetensors")["training"]
    assert meta["steps"] == 2 and meta["world_size"] == 1 and meta["config"]["loss"]["alpha"] == 0.2
    assert meta["manifests"] == [train.name]  # a shipped file names its data, not the trainer's folders
    rows = list(csv.DictReader((out / "log.csv").open()))
    assert [int(r["step"]) for r in rows] == [1, 2] and all(float(r["loss"]) >= 0 for r in rows)
    model, _ = load_checkpoint(out / "best.safetensors")
    assert model.cfg.descriptor_dim == 4  # the tiny init model, not the default variant
    assert model.cfg.scaling == "exposure" and model.cfg.colour == "grey"  # fine-tuning changed the init's convention

    assert main([*args, "--resume", str(out / "last.safetensors"), "--optim.max_steps", "3"]) == 0
    assert read_metadata(out / "last.safetensors")["training"]["steps"] == 3
    resumed = load_checkpoint(out / "last.safetensors")[0].cfg
    assert resumed.scaling == "exposure" and resumed.colour == "grey"  # a resume keeps it
    assert [int(r["step"]) for r in csv.DictReader((out / "log.csv").open())] == [1, 2, 3]


def test_train_cli_bad_config_value(tmp_path, capsys):
    train = write_route_manifest(tmp_path / "train", places=2, size=(32, 32))
    assert main(["train", "--manifest", str(train), "--out", str(tmp_path / "o"), "--loss.alpha", "3"]) == 2
    assert "loss.alpha" in capsys.readouterr().err
