"""Crash safety of whole programs: SIGKILL mid build-map, mid engine mapping, and readers beside a writer.

test_map_store.py kills a process that appends to the store directly; here the killed process is
the real thing (the ``dejavu-ros build-map`` command, an engine in mapping mode), and the checks
are the ones an operator makes after a power cut: the map opens, passes the integrity check, holds
every keyframe committed before the kill, and can be extended and localized against afterwards.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import REPO
from dejavu_ros.cli.main import main
from dejavu_ros.config import DejavuConfig
from dejavu_ros.demo.run import SIDE_LOOKING
from dejavu_ros.demo.world import make_street, render
from dejavu_ros.features.checkpoint import save_checkpoint
from dejavu_ros.features.dvf import DVF, DVFConfig
from dejavu_ros.features.extractor import FeatureExtractor
from dejavu_ros.output.bag_writer import BagWriter
from dejavu_ros.output.messages import MessageTypes, header_msg, image_msg, pose_msg
from dejavu_ros.map import KeyframeMap
from dejavu_ros.relocalization.engine import RelocalizationEngine

IMG, ODOM = "/camera/image_raw", "/odom"
FRAMES, SPACING_M = 150, 0.2
#: one thread per child process: the machine has two cores and other work on them
CHILD_ENV = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=str(REPO))


def frames_along(xs, condition="day", seed=0):
    street = make_street(60.0, seed=4)
    rng = np.random.default_rng(seed)
    return [cv2.resize(render(street, float(x), condition, rng), (160, 128), interpolation=cv2.INTER_AREA)
            for x in xs]


def write_drive(path: Path, xs) -> Path:
    mt = MessageTypes.from_rosbags()
    with BagWriter(path) as bag:
        bag.add_topic(IMG, "sensor_msgs/msg/Image")
        bag.add_topic(ODOM, "nav_msgs/msg/Odometry")
        for i, (x, rgb) in enumerate(zip(xs, frames_along(xs))):
            stamp = 1_700_000_000_000_000_000 + i * 100_000_000
            odom = mt.new("nav_msgs/msg/Odometry", header=header_msg(mt, stamp, "map"),
                          child_frame_id="camera", pose=mt.new("geometry_msgs/msg/PoseWithCovariance",
                                      pose=pose_msg(mt, [float(x), 0.0, 0.0], SIDE_LOOKING),
                                      covariance=np.zeros(36)))
            bag.write(ODOM, stamp, odom)
            bag.write(IMG, stamp, image_msg(mt, rgb, stamp, "camera"))
    return bag.path  # the bag folder (a .mcap suffix names the storage)


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash")
    torch.manual_seed(0)
    model = save_checkpoint(DVF(DVFConfig.light()), root / "model.safetensors")
    bag = write_drive(root / "drive.mcap", np.arange(FRAMES) * SPACING_M)
    return root, model, bag


def committed_ids(path: Path) -> list[int]:
    """What a reader sees right now (the map may not exist yet)."""
    if not path.exists():
        return []
    with KeyframeMap.open(path, mode="r") as m:
        return m.ids()


def check_map(path: Path, must_hold: list[int]) -> list[int]:
    """Opens, passes the integrity check, ids 1..n without holes, every keyframe readable."""
    with KeyframeMap.open(path, mode="r") as m:
        assert m.integrity_check() == "ok"
        ids = m.ids()
        assert set(must_hold) <= set(ids)
        assert ids == list(range(1, len(ids) + 1))
        shapes = {(kf.grid.shape, kf.descriptors.shape[1], kf.global_desc.shape) for kf in m}
        assert len(shapes) == 1 and all(np.isfinite(kf.position).all() for kf in m)
    return ids


def kill(child: subprocess.Popen) -> str:
    child.send_signal(signal.SIGKILL)
    out, err = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL, err
    return out


@pytest.mark.slow
def test_sigkill_during_build_map_keeps_every_committed_keyframe(drive, tmp_path):
    root, model, bag = drive
    map_path = tmp_path / "map.db"
    committed: list[int] = []
    for round_, (more, extra_delay_s) in enumerate([(5, 0.0), (8, 0.05), (6, 0.13)]):
        command = [sys.executable, "-m", "dejavu_ros.cli.main", "build-map", str(bag), "--image-topic", IMG,
                   "--odom-topic", ODOM, "--out", str(map_path), "--model", str(model),
                   "--keyframes.min_distance_m", "0.1", "--json"] + (["--append"] if round_ else [])
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env=CHILD_ENV)
        deadline = time.time() + 240
        while len(seen := committed_ids(map_path)) < len(committed) + more:
            assert child.poll() is None, child.communicate()[1]
            assert time.time() < deadline, "build-map made no progress"
            time.sleep(0.05)
        time.sleep(extra_delay_s)  # land the kill at a different stage each round
        kill(child)
        ids = check_map(map_path, seen)
        assert len(ids) < FRAMES * (round_ + 1)  # killed part-way, not after the end
        committed = ids
    assert main(["map-info", str(map_path), "--json"]) == 0
    # the killed map can be extended and relocalized against
    short = write_drive(tmp_path / "short.mcap", [40.0, 43.0, 46.0])
    assert main(["build-map", str(short), "--image-topic", IMG, "--odom-topic", ODOM, "--out", str(map_path),
                 "--model", str(model), "--append"]) == 0
    ids = check_map(map_path, committed)
    assert len(ids) == len(committed) + 3
    assert main(["relocalize", str(short), "--image-topic", IMG, "--map", str(map_path),
                 "--model", str(model), "--no-debug-images"]) == 0


#: start of both child scripts: an engine config for the map given as the first argument
CHILD_PRELUDE = """
import sys
import numpy as np
import torch
torch.set_num_threads(1)
from dejavu_ros.config import DejavuConfig
from dejavu_ros.features.extractor import FeatureExtractor
from dejavu_ros.relocalization.engine import RelocalizationEngine

cfg = DejavuConfig()
cfg.features.device = "cpu"
cfg.node.map_path = sys.argv[1]
"""

MAPPER = CHILD_PRELUDE + """
start = float(sys.argv[2])
engine = RelocalizationEngine.from_config(cfg, "map", FeatureExtractor.random(seed=0))
rng = np.random.default_rng(int(start))
i = 0
while True:
    image = rng.integers(0, 255, (128, 160, 3), dtype=np.uint8)
    decision = engine.add_frame(image, start + i, [start + 3.0 * i, 0.0, 0.0], [0, 0, 0, 1])
    assert decision.added, decision.reason
    print(decision.keyframe_id, flush=True)
    i += 1
"""


@pytest.mark.slow
def test_sigkill_during_engine_mapping_keeps_every_committed_keyframe(tmp_path):
    map_path = tmp_path / "mapping.db"
    printed: list[int] = []
    for round_, kill_after in enumerate([3, 7, 5, 9]):
        child = subprocess.Popen([sys.executable, "-c", MAPPER, str(map_path), str(1000 * round_)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=CHILD_ENV)
        for count, line in enumerate(child.stdout, start=1):
            printed.append(int(line))
            if count >= kill_after:
                break
        printed += [int(v) for v in kill(child).split()]
        ids = check_map(map_path, printed)
        assert len(ids) <= len(printed) + 1  # at most the one append in flight had committed unreported
        printed = ids
    fe = FeatureExtractor.random(seed=0)
    engine = RelocalizationEngine.from_config(_config(map_path), "localize", fe)
    try:
        image = np.random.default_rng(1).integers(0, 255, (128, 160, 3), dtype=np.uint8)
        result = engine.relocalize(image, 0.0)
        assert engine.map_size == len(printed) and result.candidates
    finally:
        engine.close()


def _config(map_path: Path) -> DejavuConfig:
    cfg = DejavuConfig()
    cfg.features.device = "cpu"
    cfg.node.map_path = str(map_path)
    return cfg


READER = CHILD_PRELUDE + """
import json, time
total = int(sys.argv[2])
engine = RelocalizationEngine.from_config(cfg, "localize", FeatureExtractor.random(seed=0))
image = np.random.default_rng(5).integers(0, 255, (128, 160, 3), dtype=np.uint8)
print("ready", flush=True)
sizes, problems, deadline = [], [], time.time() + 120
while time.time() < deadline:
    size = engine.reload_map()
    result = engine.relocalize(image, time.time())
    ids = set(engine.keyframe_poses()[0].tolist())
    if result.status == "map_empty" or not {c.keyframe_id for c in result.candidates} <= ids:
        problems.append(result.status)
    if any(not np.isfinite(c.cx_score) for c in result.candidates):
        problems.append("nan score")
    sizes.append(size)
    if size >= total:
        break
print(json.dumps({"sizes": sizes, "problems": problems, "integrity": engine.map.integrity_check(),
                  "read_only": engine.map.read_only}), flush=True)
engine.close()
"""


@pytest.mark.slow
def test_relocalizing_from_another_process_while_the_map_is_extended(tmp_path):
    """A localize engine re-reads the map while a mapping engine appends and saves: neither breaks."""
    map_path = tmp_path / "shared.db"
    total = 30
    fe = FeatureExtractor.random(seed=0)
    writer = RelocalizationEngine.from_config(_config(map_path), "map", fe)
    frames = [np.random.default_rng(i).integers(0, 255, (128, 160, 3), dtype=np.uint8) for i in range(total)]
    try:
        assert writer.add_frame(frames[0], 0.0, [0.0, 0.0, 0.0], [0, 0, 0, 1]).added
        reader = subprocess.Popen([sys.executable, "-c", READER, str(map_path), str(total)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=CHILD_ENV)
        assert reader.stdout.readline().strip() == "ready", reader.stderr.read()
        for i in range(1, total):
            decision = writer.add_frame(frames[i], float(i), [3.0 * i, 0.0, 0.0], [0, 0, 0, 1])
            assert decision.added, decision.reason
            assert writer.save_map() == map_path
            time.sleep(0.05)
        out, err = reader.communicate(timeout=180)
        assert reader.returncode == 0, err
        report = json.loads(out)
        assert writer.map.integrity_check() == "ok" and len(writer.map) == total
        # the writer's in-memory tensors match what is on disk
        assert writer.map_size == total and writer.keyframe_poses()[0].tolist() == list(range(1, total + 1))
    finally:
        writer.close()
    assert report["problems"] == [] and report["integrity"] == "ok" and report["read_only"]
    assert report["sizes"] == sorted(report["sizes"]) and report["sizes"][-1] == total
    assert len(set(report["sizes"])) >= 4  # it really re-read the map while it grew
    check_map(map_path, list(range(1, total + 1)))
