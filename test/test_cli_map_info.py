"""`dejavu-ros map-info`: JSON keys, text summary, non-zero exit with one line for damaged files."""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys

import numpy as np
import pytest

from dejavu_ros.cli.main import main
from dejavu_ros.map import KeyframeMap
from dejavu_ros.map.synthetic import random_keyframe

from conftest import REPO

FP = "a1b2c3d4" * 8


@pytest.fixture
def map_path(tmp_path):
    rng = np.random.default_rng(3)
    path = tmp_path / "campus.db"
    frames = [random_keyframe(rng, image_size=(160, 120), num_keypoints=30, grid_hw=(6, 8))
              for _ in range(7)]
    for k, kf in enumerate(frames):
        kf.position = np.array([k * 2.0, -k, 0.5])
    with KeyframeMap.create(path, FP, 10, frame_id="map") as m:
        m.append_many(frames)
    return path


def test_json_summary(map_path, capsys):
    assert main(["map-info", str(map_path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["keyframes"] == 7 and info["integrity"] == "ok"
    assert info["frame_id"] == "map" and info["model_fingerprint"] == FP and info["schema_version"] == 1
    assert info["bbox"] == {"min": [0.0, -6.0, 0.5], "max": [12.0, 0.0, 0.5]}
    assert info["descriptor_dim"] == 10 and info["file_size_bytes"] == map_path.stat().st_size


def test_text_summary(map_path, capsys):
    assert main(["map-info", str(map_path)]) == 0
    out = capsys.readouterr().out
    assert "keyframes:" in out and " 7\n" in out and FP in out
    assert "x [0.00, 12.00]" in out and "integrity:" in out and out.rstrip().endswith("ok")


def _one_error_line(err: str, name: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and name in lines[0], err
    return lines[0]


@pytest.mark.parametrize("damage", ["truncate", "text", "empty", "missing"])
def test_unusable_files_exit_2_with_one_line(map_path, tmp_path, capsys, damage):
    bad = tmp_path / "bad.db"
    if damage == "truncate":
        shutil.copy(map_path, bad)
        os.truncate(bad, bad.stat().st_size // 2)
    elif damage == "text":
        bad.write_text("not a map\n")
    elif damage == "empty":
        bad.write_bytes(b"")
    assert main(["map-info", str(bad), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    _one_error_line(captured.err, "bad.db")


def test_damage_found_by_the_integrity_check_exits_1(map_path, capsys):
    with sqlite3.connect(map_path) as conn:
        page = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'sqlite_sequence'").fetchone()[0]
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with open(map_path, "r+b") as fh:  # wipe a page the summary does not need to read
        fh.seek((page - 1) * page_size)
        fh.write(b"\xff" * page_size)
    assert main(["map-info", str(map_path), "--json"]) == 1
    captured = capsys.readouterr()
    info = json.loads(captured.out)
    assert info["keyframes"] == 7 and info["integrity"] != "ok"
    assert "integrity" in _one_error_line(captured.err, "campus.db")


def test_console_entry_point(map_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "dejavu_ros.cli.main", "map-info", str(map_path), "--json"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["keyframes"] == 7
