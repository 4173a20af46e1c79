"""The command line as a newcomer meets it: help for every command, one-line errors for bad outputs
and options (checked before any work), the pipe, and the top-level help without heavy imports."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest
from bad_input_support import cli

from dejavu_ros.cli.main import COMMANDS, _available


@pytest.mark.parametrize("command", sorted(_available()))
def test_every_subcommand_has_help(command):
    with pytest.raises(SystemExit) as exit_info:
        cli(command, "--help")
    assert exit_info.value.code == 0


def test_top_level_help_says_what_the_tool_does_and_imports_nothing_heavy():
    code = ("import sys; from dejavu_ros.cli.main import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('HEAVY', sorted(m for m in ('torch', 'cv2', 'rosbags') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "relocalize a camera against a keyframe map across seasons" in proc.stdout
    assert all(name in proc.stdout for name in _available())
    assert "HEAVY []" in proc.stdout
    assert set(_available()) <= set(COMMANDS)


def _error(run) -> str:
    lines = [line for line in run.err.splitlines() if line.strip()]
    assert run.code == 2 and len(lines) == 1, run.err  # one line, no traceback
    return lines[0]


def test_outputs_that_cannot_be_written_fail_before_any_work(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("keep me")
    a_folder = tmp_path / "a_folder"
    a_folder.mkdir()
    under_file = a_file / "sub"
    cases = {
        ("demo", "--out", a_file): "--out .*a_file: is a file, not a folder",
        ("demo", "--out", under_file / "x"): "cannot create folder .*a_file/sub: Not a directory",
        ("evaluate", "--manifest", tmp_path / "none.csv", "--out", a_file): "--out .*a_file: is a file",
        ("similarity", "none.png", "--pca-dir", a_file): "--pca-dir .*a_file: is a file",
        ("train", "--manifest", tmp_path / "none.csv", "--out", a_file): "--out .*a_file: is a file",
        ("make-manifest", "grief", tmp_path, "--out", a_folder): "--out .*a_folder: is a folder",
        ("make-manifest", "grief", tmp_path, "--out", tmp_path / "t.csv", "--val-out", a_folder):
            "--val-out .*a_folder: is a folder",
        ("import-checkpoint", tmp_path / "x.pt", a_file): "out .*a_file: already exists; nothing was overwritten",
    }
    for argv, pattern in cases.items():
        line = _error(cli(*argv))
        assert re.search(pattern, line), (argv, line)
    assert a_file.read_text() == "keep me"  # nothing already saved is lost


@pytest.mark.parametrize("argv, pattern", [
    (["--bandwidth", "0"], r"--bandwidth: 0\.0 is below the minimum 0\.001"),
    (["--bandwidth", "-1"], r"--bandwidth: -1\.0 is below the minimum"),
    (["--stride", "0"], r"--stride: 0 is below the minimum 1"),
    (["--size", "10x10"], r"--size 10x10: each side must be 128\.\.4096 px"),
    (["--size", "100000x100000"], r"--size 100000x100000: each side must be"),
    (["--device", ""], None),  # the schema's device is a free string: an empty one means auto
])
def test_similarity_options_are_checked_by_the_schema(argv, pattern, tmp_path):
    run = cli("similarity", tmp_path / "none.png", *argv)
    line = _error(run)
    if pattern is None:
        assert "image not found" in line
    else:
        assert re.search(pattern, line), line


def test_evaluate_names_the_one_broken_constraint(tmp_path):
    line = _error(cli("evaluate", "--manifest", tmp_path / "m.csv", "--out", tmp_path / "o", "--threads", "-1"))
    assert line.endswith("--threads: -1 is below the minimum 0"), line


def test_demo_refuses_a_route_too_short_before_writing(tmp_path):
    line = _error(cli("demo", "--out", tmp_path / "d", "--length", "0"))
    assert "--length 0: the route must be 10 to 10000 m long" in line
    assert not (tmp_path / "d").exists()


def test_map_info_into_a_closed_pipe_is_quiet(tmp_path):
    import numpy as np

    from dejavu_ros.map import KeyframeMap
    from dejavu_ros.map.synthetic import random_keyframe

    path = tmp_path / "m.db"
    rng = np.random.default_rng(0)
    with KeyframeMap.create(path, model_fingerprint="f" * 16, descriptor_dim=10, frame_id="map",
                            engine_config={}) as kmap:
        kmap.append_many(random_keyframe(rng) for _ in range(3))
    proc = subprocess.run(f"{sys.executable} -m dejavu_ros.cli.main map-info {path} --json | head -n 1",
                          shell=True, capture_output=True, text=True)
    assert proc.stdout.strip() == "{" and "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr
