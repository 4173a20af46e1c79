"""Every kind of bad input the package meets, in one table: what is fed in, what must come out.

Each row names an action, the error type (or CLI exit status) it must end in, a pattern the
message must match (it has to name the file, topic, field or parameter at fault) and, where
something has state, a check that things still work afterwards. Rows whose behaviour an existing
test examines in depth are listed here with a light check so that the table stays complete.
The security promises of the README are checked at the end of the file.
"""
from __future__ import annotations

import ast
import hashlib
import io
import json
import math
import os
import pathlib
import re
import shutil
import sqlite3
import struct
import zlib
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from conftest import REPO
from dejavu_ros.cli.main import main
from dejavu_ros.config import DejavuConfig
from dejavu_ros.demo.run import _SIDE_LOOKING
from dejavu_ros.demo.world import make_street, render
from dejavu_ros.errors import DejavuError
from dejavu_ros.features.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from dejavu_ros.features.config import FeatureConfig
from dejavu_ros.features.dvf import DVF, DVFConfig
from dejavu_ros.features.extractor import FeatureExtractor
from dejavu_ros.features.preprocess import ImageError
from dejavu_ros.io.bag_writer import BagWriter
from dejavu_ros.io.errors import ImageDecodeError, RobotCarFormatError
from dejavu_ros.io.images import RawImage, image_to_rgb
from dejavu_ros.io.messages import MessageTypes, header_msg, image_msg
from dejavu_ros.io.robotcar.geometry import read_lut
from dejavu_ros.io.robotcar.layout import read_tags, read_timestamps
from dejavu_ros.io.robotcar.poses import read_ins, read_vo
from dejavu_ros.io.robotcar.problems import ProblemLog
from dejavu_ros.io.robotcar.seasons import read_pose_file
from dejavu_ros.map import KeyframeMap, MapError, MapMismatchError, MapMismatchWarning
from dejavu_ros.relocalization.engine import RelocalizationEngine
from dejavu_ros.ros.parameters import check_changes
from dejavu_ros.schema import ConfigError

IMG, ODOM = "/cam/image", "/odom"
T0 = 1_700_000_000_000_000_000
STEP_NS = 100_000_000
W, H = 160, 128


# --- inputs ------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def street():
    return make_street(40.0, seed=3)


def small_frame(x: float, seed: int = 1) -> np.ndarray:
    """A 160×128 view of the demo street at ``x`` metres (day)."""
    full = render(street(), float(x), "day", np.random.default_rng(seed))
    return cv2.resize(full, (W, H), interpolation=cv2.INTER_AREA)


def odom_msg(mt: MessageTypes, stamp: int, position, orientation=_SIDE_LOOKING):
    """Built from the raw classes: the package's builders refuse NaN, a bag may still hold one."""
    x, y, z = (float(v) for v in position)
    point = mt.new("geometry_msgs/msg/Point", x=x, y=y, z=z)
    quat = mt.new("geometry_msgs/msg/Quaternion", x=float(orientation[0]), y=float(orientation[1]),
                  z=float(orientation[2]), w=float(orientation[3]))
    pose = mt.new("geometry_msgs/msg/Pose", position=point, orientation=quat)
    return mt.new("nav_msgs/msg/Odometry", header=header_msg(mt, stamp, "map"), child_frame_id="camera",
                  pose=mt.new("geometry_msgs/msg/PoseWithCovariance", pose=pose, covariance=np.zeros(36)))


def write_bag(path: Path, xs, *, header_stamps=None, edit_image=None, position=None) -> Path:
    """Image + odometry per position; log times always increase, header stamps may not."""
    mt = MessageTypes.from_rosbags()
    with BagWriter(path) as bag:
        bag.add_topic(IMG, "sensor_msgs/msg/Image")
        bag.add_topic(ODOM, "nav_msgs/msg/Odometry")
        for i, x in enumerate(xs):
            stamp = header_stamps[i] if header_stamps is not None else T0 + i * STEP_NS
            log_time = T0 + i * STEP_NS
            img = image_msg(mt, small_frame(x, seed=i), stamp, "camera")
            if edit_image is not None:
                edit_image(i, img)
            pos = position(i, x) if position is not None else (float(x), 0.0, 0.0)
            bag.write(ODOM, log_time, odom_msg(mt, stamp, pos))
            bag.write(IMG, log_time, img)
    return path


@dataclass
class CliRun:
    code: int
    out: str
    err: str

    def json(self) -> dict:
        return json.loads(self.out.strip().splitlines()[-1])


def cli(*argv) -> CliRun:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main([str(a) for a in argv])
    return CliRun(code, out.getvalue(), err.getvalue())


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def engine_config(map_path: Path | str = "") -> DejavuConfig:
    cfg = DejavuConfig()
    cfg.features.device = "cpu"
    cfg.node.map_path = str(map_path)
    return cfg


@dataclass
class Assets:
    """Shared, read-only inputs (cases that damage something work on copies in their own folder)."""

    root: Path
    model: Path
    other_model: Path
    dim8_model: Path
    bag: Path
    map: Path
    map_hash: str
    extractor: FeatureExtractor
    engine: RelocalizationEngine
    frame: np.ndarray


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_input")
    torch.manual_seed(0)
    model = save_checkpoint(DVF(DVFConfig.light()), root / "model.safetensors")
    torch.manual_seed(1)
    other = save_checkpoint(DVF(DVFConfig.light()), root / "other.safetensors")
    torch.manual_seed(1)
    dim8 = save_checkpoint(DVF(DVFConfig.light(8)), root / "dim8.safetensors")
    bag = write_bag(root / "street.mcap", np.arange(0.0, 24.0, 3.0))
    built = cli("build-map", bag, "--image-topic", IMG, "--odom-topic", ODOM, "--out", root / "map.db",
                "--model", model, "--json")
    assert built.code == 0 and built.json()["keyframes_added"] == 8, built.err
    extractor = FeatureExtractor.from_config(FeatureConfig(model=str(model), device="cpu"))
    engine = RelocalizationEngine.from_config(engine_config(root / "map.db"), "localize", extractor)
    yield Assets(root, model, other, dim8, bag, root / "map.db", sha256(root / "map.db"), extractor, engine,
                 small_frame(4.5, seed=99))
    engine.close()


@dataclass
class Env:
    a: Assets
    tmp: Path
    scratch: dict = field(default_factory=dict)

    def mapping_engine(self) -> RelocalizationEngine:
        cfg = engine_config(self.tmp / "new.db")
        return RelocalizationEngine.from_config(cfg, "map", self.a.extractor)

    def relocalize(self, *extra, bag=None, map_path=None, model=None) -> CliRun:
        return cli("relocalize", bag or self.a.bag, "--image-topic", IMG, "--map", map_path or self.a.map,
                   "--model", model or self.a.model, "--no-debug-images", *extra)

    def build(self, bag, *extra, out=None, model=None) -> CliRun:
        return cli("build-map", bag, "--image-topic", IMG, "--odom-topic", ODOM, "--out",
                   out or self.tmp / "built.db", "--model", model or self.a.model, "--json", *extra)

    def copy_map(self, name: str = "copy.db") -> Path:
        return Path(shutil.copy(self.a.map, self.tmp / name))


# --- actions -----------------------------------------------------------------------------------

def rgb_msg(**changes) -> RawImage:
    msg = RawImage.from_array(small_frame(3.0), "rgb8")
    for key, value in changes.items():
        setattr(msg, key, value)
    return msg


def decode(msg) -> np.ndarray:
    return image_to_rgb(msg, topic=IMG)


def mono8_label_on_16bit_data(env):
    """16-bit rows under an 8-bit label: step = 2*width, data = height*2*width (a 640 px wide camera)."""
    gray16 = cv2.resize(small_frame(3.0)[..., 0], (640, 32)).astype(np.uint16) * 257
    msg = RawImage.from_array(gray16, "mono16")
    msg.encoding = "mono8"
    return decode(msg)


def mono16_label_on_8bit_data(env):
    msg = RawImage.from_array(small_frame(3.0)[..., 0], "mono8")
    msg.encoding = "mono16"
    return decode(msg)


def png_declaring(width: int, height: int) -> bytes:
    """A valid grey PNG of ``width``×``height`` zeros: a few dozen KB that decode to ``width*height`` bytes."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    packer, row = zlib.compressobj(1), b"\0" * (width + 1)
    pixels = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def decompression_bomb(env):
    return decode(SimpleNamespace(format="png", data=png_declaring(9000, 9000)))


def huge_image(env):
    """8000×6000 must be downscaled to features.max_side before the network, not fed whole."""
    seen = []
    extractor = env.a.engine.extractor
    real = extractor.extract
    extractor.extract = lambda image, size=None: (seen.append(image.shape), real(image, size))[1]
    try:
        image = np.ascontiguousarray(np.tile(env.a.frame, (47, 50, 1))[:6000, :8000])
        result = env.a.engine.relocalize(image, 5.0)
    finally:
        del extractor.extract
    return result, seen


def check_huge_image(env, outcome):
    result, seen = outcome
    assert result.image_size == (8000, 6000)
    assert seen == [(480, 640, 3)]  # features.max_side = 640
    assert result.status != "map_empty" and result.candidates and result.timings_ms["features"] > 0


def grayscale(env):
    gray = cv2.cvtColor(env.a.frame, cv2.COLOR_RGB2GRAY)
    return env.a.engine.relocalize(gray, 1.0), env.a.engine.relocalize(np.dstack([gray] * 3), 1.0)


def check_grayscale(env, outcome):
    gray, replicated = outcome
    assert gray.image_size == (W, H) and gray.candidates
    assert [c.keyframe_id for c in gray.candidates] == [c.keyframe_id for c in replicated.candidates]
    assert [c.cx_score for c in gray.candidates] == pytest.approx([c.cx_score for c in replicated.candidates])


def engine_still_works(env, _outcome=None):
    """The localize engine answers a good frame afterwards and its map file is untouched."""
    result = env.a.engine.relocalize(env.a.frame, 9.0)
    assert result.status in ("relocalized", "not_verified") and len(result.candidates) == 5
    assert all(math.isfinite(c.cx_score) for c in result.candidates)
    assert env.a.engine.map_size == 8 and sha256(env.a.map) == env.a.map_hash


def add_bad_pose(position, orientation):
    def action(env):
        engine = env.mapping_engine()
        env.scratch["engine"] = engine
        return engine.add_frame(env.a.frame, 1.0, position, orientation)
    return action


def skipped_then_added(env, outcome):
    added, reason, kf_id = outcome
    assert not added and kf_id is None and reason.startswith("invalid_pose")
    engine = env.scratch.pop("engine")
    assert len(engine.map) == 0
    assert engine.add_frame(env.a.frame, 2.0, [1.0, 0.0, 0.0], [0, 0, 0, 1])[0]  # the next good frame is kept
    engine.close()
    with KeyframeMap.open(env.tmp / "new.db") as m:
        assert len(m) == 1 and np.isfinite(m.get(m.ids()[0]).position).all()


def add_bad_covariance(env):
    engine = env.mapping_engine()
    env.scratch["engine"] = engine
    return engine.add_frame(env.a.frame, 1.0, [0.0, 0.0, 0.0], [0, 0, 0, 1], covariance=np.ones(5))


def add_with_nan_stamp(env):
    engine = env.mapping_engine()
    env.scratch["engine"] = engine
    return engine.add_frame(env.a.frame, float("nan"), [0, 0, 0], [0, 0, 0, 1])


def readonly_add(env):
    return env.a.engine.add_frame(env.a.frame, 1.0, [50.0, 0.0, 0.0], [0, 0, 0, 1])


def empty_map_relocalize(env):
    engine = env.mapping_engine()
    engine.close()
    run = env.relocalize("--report", env.tmp / "frames.jsonl", map_path=env.tmp / "new.db")
    return run


def check_empty_map(env, run):
    records = [json.loads(line) for line in (env.tmp / "frames.jsonl").read_text().splitlines()]
    assert len(records) == 8 and {r["status"] for r in records} == {"map_empty"}
    assert "frames: 8  relocalized: 0" in run.out


def damaged_map(kind: str):
    def action(env):
        path = env.tmp / "bad.db"
        if kind == "truncated":
            shutil.copy(env.a.map, path)
            os.truncate(path, path.stat().st_size // 2)
        elif kind == "text":
            path.write_text("just some text\n")
        elif kind == "empty":
            path.write_bytes(b"")
        elif kind == "foreign":
            with sqlite3.connect(path) as conn:
                conn.execute("CREATE TABLE t (x)")
            conn.close()
        elif kind == "directory":
            path.mkdir()
        return env.relocalize(map_path=path)
    return action


def original_map_intact(env, _outcome=None):
    assert cli("map-info", env.a.map, "--json").code == 0
    assert sha256(env.a.map) == env.a.map_hash


def mismatch_allowed(env, _outcome):
    original_map_intact(env)
    with pytest.warns(MapMismatchWarning, match="continuing because allow_model_mismatch is set"):
        run = env.relocalize("--allow-model-mismatch", model=env.a.other_model)
    assert run.code == 0 and "frames: 8" in run.out, run.err


def newer_schema(env):
    path = env.copy_map()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.close()
    return KeyframeMap.open(path)


def pickle_checkpoint(env, name: str) -> Path:
    class Payload:
        def __reduce__(self):
            return (pathlib.Path.touch, (pathlib.Path(env.tmp / "pwned"),))

    path = env.tmp / name
    torch.save({"model": {"final.weight": torch.zeros(10, 32, 1, 1)}, "extra": Payload()}, path)
    return path


def import_pickle(env):
    return cli("import-checkpoint", pickle_checkpoint(env, "evil.pt"), env.tmp / "out.safetensors")


def pickle_as_model(env):
    return env.build(env.a.bag, model=pickle_checkpoint(env, "evil.safetensors"))


def payload_not_run(env, _outcome=None):
    assert not (env.tmp / "pwned").exists()
    assert not (env.tmp / "out.safetensors").exists() and not (env.tmp / "built.db").exists()


def truncated_model(env):
    data = env.a.model.read_bytes()
    (env.tmp / "cut.safetensors").write_bytes(data[: len(data) // 2])
    return env.relocalize(model=env.tmp / "cut.safetensors")


def foreign_safetensors(env):
    save_file({"w": torch.zeros(3)}, env.tmp / "foreign.safetensors")
    return load_checkpoint(env.tmp / "foreign.safetensors")


def tampered_checkpoint(change: Callable[[dict], None]):
    def action(env):
        model, _ = load_checkpoint(env.a.model)
        state = {k: v.clone() for k, v in model.state_dict().items()}
        change(state)
        from safetensors import safe_open
        with safe_open(str(env.a.model), framework="pt") as f:
            meta = f.metadata()
        save_file(state, env.tmp / "tampered.safetensors", metadata=meta)
        return load_checkpoint(env.tmp / "tampered.safetensors")
    return action


def truncated_bag(env):
    (storage,) = env.a.bag.glob("*.mcap")
    data = storage.read_bytes()
    (env.tmp / "cut.mcap").write_bytes(data[: int(len(data) * 0.6)])
    return env.build(env.tmp / "cut.mcap")


def check_truncated_bag(env, run):
    summary = run.json()
    assert summary["damage"] and 1 <= summary["keyframes_added"] < 8
    with KeyframeMap.open(env.tmp / "built.db") as m:
        assert m.integrity_check() == "ok" and len(m) == summary["keyframes_added"]


def junk_bag(env):
    (env.tmp / "junk.mcap").write_bytes(b"\x89MCAP0\r\n" + np.random.default_rng(0).bytes(2000))
    return env.build(env.tmp / "junk.mcap")


def looping_bag(env):
    """A recording of `ros2 bag play --loop`: header stamps restart while log times go on."""
    xs = list(np.arange(0.0, 18.0, 3.0)) * 2
    stamps = [T0 + (i % 6) * STEP_NS for i in range(12)]
    return env.build(write_bag(env.tmp / "loop.mcap", xs, header_stamps=stamps))


def check_looping_bag(env, run):
    summary = run.json()
    assert summary["frames_read"] == 12 and summary["keyframes_added"] == 12  # time_jump restarts selection
    with KeyframeMap.open(env.tmp / "built.db") as m:
        assert m.integrity_check() == "ok"
        stamps = [kf.stamp for kf in m]
        positions = [float(kf.position[0]) for kf in m]
    assert stamps[6] < stamps[5] and positions[:6] == positions[6:]


def nan_odometry(env):
    def position(i, x):
        return (float("nan"), 0.0, 0.0) if i in (2, 5) else (float(x), 0.0, 0.0)
    return env.build(write_bag(env.tmp / "nan.mcap", np.arange(0.0, 24.0, 3.0), position=position))


def check_nan_odometry(env, run):
    summary = run.json()
    assert summary["skipped"]["no_pose_within_tolerance"] == 2 and summary["keyframes_added"] == 6
    with KeyframeMap.open(env.tmp / "built.db") as m:
        assert np.isfinite(m.load_poses()[1]).all()


def all_poses_bad(env):
    bag = write_bag(env.tmp / "bad.mcap", [0.0, 3.0], position=lambda i, x: (float("inf"), 0.0, 0.0))
    return env.build(bag)


def bad_frames_in_bag(env):
    def edit(i, img):
        if i == 1:
            img.encoding = "weird42"
        elif i == 3:
            img.step = 10
        elif i == 5:
            img.data = img.data[: len(img.data) // 2]
    return env.build(write_bag(env.tmp / "mixed.mcap", np.arange(0.0, 24.0, 3.0), edit_image=edit))


def check_bad_frames(env, run):
    summary = run.json()
    skipped = " ".join(summary["skipped"])
    assert summary["frames_read"] == 8 and summary["keyframes_added"] == 5
    assert "topic '/cam/image' field 'encoding'" in skipped and "field 'step'" in skipped
    assert "field 'data'" in skipped


def image_topic_of_wrong_type(env):
    return env.build(env.a.bag, "--image-topic", ODOM)


def missing_output_folder(option: str):
    def action(env):
        return env.relocalize(option, env.tmp / "no" / "such" / "folder" / "out.json")
    return action


def write_text(name: str, text: str):
    def make(env) -> Path:
        (env.tmp / name).write_text(text)
        return env.tmp / name
    return make


INS_HEADER = ("timestamp,ins_status,latitude,longitude,altitude,northing,easting,down,utm_zone,"
              "velocity_north,velocity_east,velocity_down,roll,pitch,yaw")


def ins_rows(env):
    good = "{t},INS_SOLUTION_GOOD,51.7,-1.2,110,5735000,620000,-110,30U,1,0,0,0,0,0.5"
    lines = [INS_HEADER, good.format(t=100), "200,INS_SOLUTION_GOOD,51.7",
             good.format(t=300).replace("51.7", "x"), good.format(t=400).replace("5735000", "nan"),
             good.format(t=50), good.format(t=500)]
    path = write_text("ins.csv", "\n".join(lines) + "\n")(env)
    problems = ProblemLog()
    return [row.stamp_us for row in read_ins(path, problems)], problems


def check_ins_rows(env, outcome):
    stamps, problems = outcome
    assert stamps == [100, 500]
    text = "\n".join(problems.messages)
    for line, what in [(3, "expected 15 columns, got 3"), (4, "not a number"), (5, "non-finite"),
                       (6, "timestamp 50 is not after 100")]:
        assert re.search(rf"ins\.csv:{line}: {what}", text), text


def vo_rows(env):
    lines = ["source_timestamp,destination_timestamp,x,y,z,roll,pitch,yaw", "10,20,1,0,0,0,0,0", "20,30,1,0",
             "30,40,1,0,0,0,0,inf", "40,50,1,0,0,0,0,0"]
    problems = ProblemLog()
    poses = list(read_vo(write_text("vo.csv", "\n".join(lines) + "\n")(env), problems))
    return poses, problems


def check_vo_rows(env, outcome):
    poses, problems = outcome
    assert [p.stamp_us for p in poses] == [10, 40] and poses[-1].transform[0, 3] == pytest.approx(2.0)
    assert any("vo.csv:3: expected 8 columns" in m for m in problems.messages)
    assert any("vo.csv:4: non-finite" in m for m in problems.messages)


def timestamp_rows(env):
    path = write_text("stereo.timestamps", "100 1\nabc 1\n90 1\n200 2\n")(env)
    problems = ProblemLog()
    return [e.stamp_us for e in read_timestamps(path, problems)], problems


def check_timestamp_rows(env, outcome):
    stamps, problems = outcome
    assert stamps == [100, 200]
    assert problems.messages[0].endswith("stereo.timestamps:2: expected '<timestamp> <chunk>', got 'abc 1'")
    assert problems.messages[1].endswith("stereo.timestamps:3: timestamp 90 is not after 100")


def seasons_pose_rows(env):
    body = " ".join(["1"] * 12)
    text = f"a.jpg {body}\nb.jpg 1 2 3\nc.jpg {' '.join(['x'] * 12)}\nd.jpg {body.replace('1', 'nan', 1)}\n"
    problems = ProblemLog()
    return read_pose_file(write_text("poses.txt", text)(env), problems), problems


def check_seasons_pose_rows(env, outcome):
    poses, problems = outcome
    assert list(poses) == ["a.jpg"]
    assert [m.split("poses.txt:")[1][:2] for m in problems.messages] == ["2:", "3:", "4:"]
    assert "expected 12 or 16 finite numbers after the name, got 3" in problems.messages[0]
    assert "non-numeric pose values" in problems.messages[1]


def lut_file(values: np.ndarray):
    def action(env):
        values.astype(np.float64).tofile(env.tmp / "cam_distortion_lut.bin")
        return read_lut(env.tmp / "cam_distortion_lut.bin", 4, 3)
    return action


def build_with_params(text: str):
    def action(env):
        params = write_text("params.yaml", text)(env)
        return env.build(env.a.bag, "--params", params)
    return action


def no_map_written(env, _outcome=None):
    assert not (env.tmp / "built.db").exists()


def node_change(changes: dict):
    def action(env):
        env.scratch["cfg"] = DejavuConfig()
        return check_changes(env.scratch["cfg"], changes)
    return action


def node_config_unchanged(env, _outcome=None):
    cfg = env.scratch["cfg"]
    assert cfg == DejavuConfig()  # a refused change leaves the running config as it was
    assert check_changes(cfg, {"matching.ratio": 0.8}).matching.ratio == 0.8


# --- the table ---------------------------------------------------------------------------------

@dataclass
class Case:
    id: str
    action: Callable[[Env], Any]
    expect: type | int | None  # exception type, CLI exit status, or None: returns normally
    match: str | None = None  # regex over the exception message / the CLI's stderr (or stdout)
    after: Callable[[Env, Any], None] | None = None
    xfail: str | None = None  # a known bug: the fix is proposed in the reliability report


ROS_PARAMS = "/**:\n  ros__parameters:\n    matching:\n      {}\n"
CASES = [
    # images (io/images.py) — decoding never trusts height/width/step/encoding
    Case("image-unknown-encoding", lambda e: decode(rgb_msg(encoding="weird42")), ImageDecodeError,
         r"topic '/cam/image' field 'encoding': unsupported encoding 'weird42'; supported: .*rgb8"),
    Case("image-step-too-small", lambda e: decode(rgb_msg(step=W * 3 - 1)), ImageDecodeError,
         r"topic '/cam/image' field 'step': 479 is smaller than width\*bytes_per_pixel = 160\*3"),
    Case("image-negative-step", lambda e: decode(rgb_msg(step=-3)), ImageDecodeError, r"field 'step': -3"),
    Case("image-data-short", lambda e: decode(rgb_msg(data=b"\0" * (H * W * 3 - 1))), ImageDecodeError,
         r"field 'data': 61439 bytes, expected height\*step = 128\*480"),
    Case("image-zero-height", lambda e: decode(rgb_msg(height=0)), ImageDecodeError,
         r"topic '/cam/image': zero-sized image \(field 'height'=0"),
    Case("image-zero-width-no-data", lambda e: decode(rgb_msg(width=0, step=0, data=b"")), ImageDecodeError,
         r"'width'=0"),
    Case("image-huge-dimensions-tiny-data",
         lambda e: decode(rgb_msg(height=100_000, width=100_000, step=300_000)), ImageDecodeError,
         r"field 'data': 61440 bytes, expected height\*step = 100000\*300000"),
    Case("image-16bit-label-on-8bit-data", mono16_label_on_8bit_data, ImageDecodeError,
         r"'mono16' is 16-bit but field 'step'=160 .* sized for 8-bit pixels"),
    Case("image-8bit-label-on-16bit-data", mono8_label_on_16bit_data, ImageDecodeError,
         r"topic '/cam/image'.*'mono8'.*field 'step'=1280.*16-bit"),
    Case("image-depth-encoding-as-colour", lambda e: decode(rgb_msg(encoding="32FC1")), ImageDecodeError,
         r"field 'encoding'.*depth encoding: use depth_to_metres"),
    Case("image-yuv-odd-width",
         lambda e: decode(RawImage.from_array(np.zeros((4, 5, 2), np.uint8), "yuv422")), ImageDecodeError,
         r"topic '/cam/image' field 'width': 5 .*yuv422"),
    Case("image-compressed-garbage",
         lambda e: decode(SimpleNamespace(format="jpeg", data=b"\xff\xd8junk" * 40)), ImageDecodeError,
         r"topic '/cam/image' field 'data': 240 bytes are not a decodable JPEG/PNG"),
    Case("image-compressed-empty", lambda e: decode(SimpleNamespace(format="png", data=b"")),
         ImageDecodeError,
         r"field 'data' is empty \(format 'png'\)"),
    Case("image-compressed-decompression-bomb", decompression_bomb, ImageDecodeError,
         r"topic '/cam/image' field 'data': .*9000x9000"),
    # the engine (relocalization/engine.py): arrays handed in directly, poses in mapping mode
    Case("engine-huge-image-downscaled", huge_image, None, after=check_huge_image),
    Case("engine-grayscale-into-rgb-model", grayscale, None, after=check_grayscale),
    Case("engine-one-channel-3d", lambda e: e.a.engine.relocalize(np.zeros((H, W, 1), np.uint8), 1.0),
         ImageError,
         r"expected H×W×3 RGB, got shape \(128, 160, 1\)", after=engine_still_works),
    Case("engine-zero-size-image", lambda e: e.a.engine.relocalize(np.zeros((0, W, 3), np.uint8), 1.0),
         ImageError,
         r"zero-size image", after=engine_still_works),
    Case("engine-not-an-array", lambda e: e.a.engine.relocalize([[1, 2, 3]], 1.0), ImageError,
         r"expected a numpy array, got list", after=engine_still_works),
    Case("engine-nan-image", lambda e: e.a.engine.relocalize(np.full((H, W, 3), np.nan), 1.0), ImageError,
         r"NaN", after=engine_still_works),
    Case("engine-int64-image-needing-downscale",
         lambda e: e.a.engine.relocalize(np.zeros((700, 900, 3), np.int64), 1.0), ImageError, r"int64",
         after=engine_still_works),
    Case("engine-nan-pose", add_bad_pose([np.nan, 0, 0], [0, 0, 0, 1]), None, after=skipped_then_added),
    Case("engine-inf-quaternion", add_bad_pose([0, 0, 0], [0, 0, np.inf, 1]), None, after=skipped_then_added),
    Case("engine-zero-quaternion", add_bad_pose([0, 0, 0], [0, 0, 0, 0]), None, after=skipped_then_added),
    Case("engine-nan-stamp", add_with_nan_stamp, DejavuError, r"keyframe selection: stamp is nan"),
    Case("engine-covariance-wrong-shape", add_bad_covariance, None, after=skipped_then_added),
    Case("engine-append-to-read-only-map", readonly_add, DejavuError, r"needs a map opened for writing",
         after=engine_still_works),
    # map files (map/store.py) through the CLI and the store
    Case("map-empty", empty_map_relocalize, 0, r"frames: 8", after=check_empty_map),
    Case("map-from-another-model", lambda e: e.relocalize(model=e.a.other_model), 2,
         r"map\.db: map was built with model fingerprint [0-9a-f]+, "
         r"the loaded model has fingerprint [0-9a-f]+; rebuild", after=mismatch_allowed),
    Case("map-wrong-descriptor-size", lambda e: e.relocalize(model=e.a.dim8_model), 2,
         r"map\.db: map stores 10-dimensional descriptors, the model produces 8-dimensional ones",
         after=original_map_intact),
    Case("map-truncated", damaged_map("truncated"), 2, r"bad\.db: truncated map file",
         after=original_map_intact),
    Case("map-not-sqlite", damaged_map("text"), 2, r"bad\.db: not a keyframe map \(not an SQLite database\)"),
    Case("map-empty-file", damaged_map("empty"), 2, r"bad\.db: empty file \(0 bytes\)"),
    Case("map-foreign-sqlite", damaged_map("foreign"), 2,
         r"bad\.db: an SQLite database but not a keyframe map"),
    Case("map-is-a-directory", damaged_map("directory"), 2, r"map not found: .*bad\.db"),
    Case("map-newer-schema", newer_schema, MapMismatchError, r"copy\.db: map schema version 99 is newer"),
    Case("map-out-exists", lambda e: e.build(e.a.bag, out=e.a.map), 2,
         r"map\.db already exists; pass --append",
         after=original_map_intact),
    # checkpoints (features/checkpoint.py)
    Case("checkpoint-pickle-import", import_pickle, 2, r"evil\.pt: refused to load \(only plain tensors",
         after=payload_not_run),
    Case("checkpoint-pickle-as-model", pickle_as_model, 2,
         r"evil\.safetensors: not a readable safetensors file",
         after=payload_not_run),
    Case("checkpoint-error-has-no-terminal-codes", import_pickle, 2, r"^[^\x1b]*$"),
    Case("checkpoint-truncated", truncated_model, 2, r"cut\.safetensors: not a readable safetensors file "
         r"\(truncated or corrupt"),
    Case("checkpoint-foreign-safetensors", foreign_safetensors, CheckpointError,
         r"foreign\.safetensors: not a dejavu_ros DVF checkpoint"),
    Case("checkpoint-wrong-tensor-shape",
         tampered_checkpoint(lambda s: s.update({"head.weight": torch.zeros(7, 16, 1, 1)})), CheckpointError,
         r"tampered\.safetensors: tensor head\.weight has shape \(7, 16, 1, 1\)"),
    Case("checkpoint-nan-weights", tampered_checkpoint(lambda s: s["head.weight"].fill_(float("nan"))),
         CheckpointError, r"tensor head\.weight holds NaN or Inf"),
    Case("checkpoint-missing", lambda e: e.relocalize(model=e.tmp / "none.safetensors"), 2,
         r"model file not found: .*none\.safetensors"),
    # bags (io/bag_reader.py, replay/build.py)
    Case("bag-unknown-topic", lambda e: e.build(e.a.bag, "--image-topic", "/nope"), 2,
         r"bag .*street\.mcap has no topic '/nope'; topics in the bag: /cam/image \(sensor_msgs/msg/Image\)",
         after=no_map_written),
    Case("bag-truncated-mcap", truncated_bag, 0, after=check_truncated_bag),
    Case("bag-missing", lambda e: e.build(e.tmp / "none.mcap"), 2, r"bag not found: .*none\.mcap",
         after=no_map_written),
    Case("bag-random-bytes", junk_bag, 2, r"junk\.mcap.*(damaged|cannot|not a)", after=no_map_written),
    Case("bag-stamps-go-backwards", looping_bag, 0, after=check_looping_bag),
    Case("bag-nan-odometry", nan_odometry, 0, after=check_nan_odometry),
    Case("bag-no-valid-pose", all_poses_bad, 2, r"mcap: no valid pose on /odom", after=no_map_written),
    Case("bag-bad-frames-skipped", bad_frames_in_bag, 0, after=check_bad_frames),
    Case("bag-odom-topic-not-a-pose", lambda e: e.build(e.a.bag, "--odom-topic", IMG), 2,
         r"topic '/cam/image'.*(is not a pose message|type sensor_msgs/msg/Image; expected nav_msgs)",
         after=no_map_written),
    Case("bag-image-topic-not-an-image", image_topic_of_wrong_type, 2, r"/odom.*nav_msgs/msg/Odometry",
         after=no_map_written),
    Case("replay-image-topic-not-an-image", lambda e: e.relocalize("--image-topic", ODOM), 2,
         r"/odom.*nav_msgs/msg/Odometry"),
    Case("replay-report-folder-missing", missing_output_folder("--report"), 2, r"out\.json"),
    Case("replay-summary-folder-missing", missing_output_folder("--summary-json"), 2, r"out\.json"),
    # RobotCar (io/robotcar/): malformed rows are skipped and reported as file:line
    Case("robotcar-ins-malformed-rows", ins_rows, None, after=check_ins_rows),
    Case("robotcar-vo-malformed-rows", vo_rows, None, after=check_vo_rows),
    Case("robotcar-timestamps-malformed", timestamp_rows, None, after=check_timestamp_rows),
    Case("robotcar-seasons-pose-rows", seasons_pose_rows, None, after=check_seasons_pose_rows),
    Case("robotcar-ins-header-missing", lambda e: list(read_ins(write_text("ins.csv", "time,lat\n1,2\n")(e),
                                                                  ProblemLog())),
         RobotCarFormatError, r"ins\.csv:1: header lacks column\(s\) timestamp, ins_status"),
    Case("robotcar-lut-wrong-size", lut_file(np.zeros(10)), RobotCarFormatError,
         r"cam_distortion_lut\.bin has 80 bytes; images of 4x3 need 2\*4\*3 float64 = 192 bytes"),
    Case("robotcar-lut-nan", lut_file(np.full(24, np.nan)), RobotCarFormatError,
         r"lut\.bin contains NaN/Inf"),
    Case("robotcar-tags-not-a-list", lambda e: read_tags(write_text("tags.yaml", "night: true\n")(e)),
         RobotCarFormatError, r"tags file .*tags\.yaml: expected a YAML list"),
    Case("robotcar-origin-flag", lambda e: cli("convert-robotcar", e.tmp, "--camera", "stereo/centre",
                                               "--models", e.tmp, "--out", e.tmp / "o.mcap",
                                               "--origin", "1,2"),
         2,
         r"--origin '1,2': expected three numbers N,E,D"),
    # parameters: CLI flags, YAML files, the node's run-time changes (ros/parameters.py)
    Case("param-flag-out-of-range", lambda e: e.build(e.a.bag, "--matching.ratio", "1.5"), 2,
         r"parameter 'matching\.ratio': 1\.5 is above the maximum 1\.0", after=no_map_written),
    Case("param-flag-wrong-type", lambda e: e.build(e.a.bag, "--features.max_side", "big"), 2,
         r"parameter 'features\.max_side': expected int, got 'big'", after=no_map_written),
    Case("param-flag-bad-choice", lambda e: e.build(e.a.bag, "--features.precision", "fp64"), 2,
         r"parameter 'features\.precision': 'fp64' is not one of \['fp32', 'fp16', 'bf16'\]"),
    Case("param-flag-nan", lambda e: e.build(e.a.bag, "--keyframes.min_distance_m", "nan"), 2,
         r"parameter 'keyframes\.min_distance_m': expected float, got nan"),
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


def test_the_table_is_complete():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 25
    areas = {i.split("-")[0] for i in ids}
    assert {"image", "engine", "map", "checkpoint", "bag", "robotcar", "param"} <= areas


def _error_line(run: CliRun) -> str:
    """The CLI's error: one line, the last one on stderr (progress bars may come before it)."""
    lines = [line for line in run.err.replace("\r", "\n").splitlines() if line.strip()]
    assert lines and lines[-1].startswith("dejavu-ros "), run.err
    assert ": error: " in lines[-1], run.err
    return lines[-1]


def _param(case: Case):
    marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
    return pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_bad_input(case: Case, assets, tmp_path):
    env = Env(assets, tmp_path)
    try:
        if isinstance(case.expect, type):
            with pytest.raises(case.expect) as info:
                case.action(env)
            message = str(info.value)
            assert "\n" not in message, message
            assert re.search(case.match, message), message
            outcome = info.value
        elif isinstance(case.expect, int):
            outcome = case.action(env)
            assert outcome.code == case.expect, outcome.err
            if case.expect == 2:
                line = _error_line(outcome)
                assert re.search(case.match, line), line
            elif case.match:
                assert re.search(case.match, outcome.out + outcome.err), outcome.out
        else:
            outcome = case.action(env)
        if case.after is not None:
            case.after(env, outcome)
    finally:
        engine = env.scratch.pop("engine", None)
        if engine is not None:
            engine.close()


# --- security promises (README "Reliability and security") -------------------------------------

PACKAGE = REPO / "dejavu_ros"
SOURCES = sorted(PACKAGE.rglob("*.py"))
#: upper-case SQL words anywhere in a string's literal text mark it as SQL (messages are lower case)
SQL_WORDS = re.compile(r"\b(SELECT|INSERT INTO|UPDATE|DELETE FROM|CREATE TABLE|DROP|PRAGMA|WHERE|VALUES)\b")
CONSTANT = re.compile(r"^_?[A-Z][A-Z0-9_]*$")


def _package_trees():
    for path in SOURCES:
        yield str(path.relative_to(REPO)), ast.parse(path.read_text(), str(path))


def _snippet(code: str):
    return [("snippet", ast.parse(code))]


def _call_name(node: ast.Call) -> str:
    """``name`` for a bare call, ``module.name`` for a call on a plain name, ``.name`` for other methods."""
    func = node.func
    if isinstance(func, ast.Attribute):
        base = func.value.id if isinstance(func.value, ast.Name) else ""
        return f"{base}.{func.attr}"
    return func.id if isinstance(func, ast.Name) else ""


def _is_const(node: ast.AST, value) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


RUNS_CODE = ("eval", "exec", "compile", "__import__", "os.system", "os.popen", "yaml.load",
             "yaml.unsafe_load", "np.load", "numpy.load", "torch.load")
UNPICKLERS = ("pickle", "cPickle", "_pickle", "dill", "marshal", "shelve", "joblib")
DOWNLOADERS = ("hub", "hf_hub_download", "from_pretrained", "load_state_dict_from_url")
NETWORK = ("socket", "urllib", "http", "requests", "httpx", "aiohttp", "ftplib", "smtplib", "paramiko")


def code_execution_findings(trees) -> list[str]:
    """Ways data could run code: unpickling, eval/exec, shells, unsafe loaders."""
    found = []
    for where, tree in trees:
        for node in ast.walk(tree):
            at = f"{where}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names]
                if isinstance(node, ast.ImportFrom):
                    names.append(node.module or "")
                found += [f"{at}: imports {n}" for n in names if n.split(".")[0] in UNPICKLERS]
            if not isinstance(node, ast.Call):
                continue
            name, keywords = _call_name(node), {k.arg: k.value for k in node.keywords}
            if name == "torch.load":
                if not _is_const(keywords.get("weights_only"), True):
                    found.append(f"{at}: torch.load without weights_only=True")
            elif name in ("np.load", "numpy.load"):
                if not _is_const(keywords.get("allow_pickle", ast.Constant(False)), False):
                    found.append(f"{at}: {name} with allow_pickle")
            elif name in RUNS_CODE:
                found.append(f"{at}: calls {name}")
            if "shell" in keywords and not _is_const(keywords["shell"], False):
                found.append(f"{at}: shell=...")
    return found


def network_findings(trees) -> list[str]:
    found = []
    for where, tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            elif isinstance(node, ast.Attribute) and node.attr in DOWNLOADERS:
                found.append(f"{where}:{node.lineno}: downloads weights ({ast.unparse(node)})")
                continue
            else:
                continue
            found += [f"{where}:{node.lineno}: {n}" for n in names if n.split(".")[0] in NETWORK]
    return found


def _safe_sql_value(node: ast.AST, bound: set[str]) -> bool:
    """An f-string part that cannot carry data: constants, int()/len(), joins of constant names or '?'."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.Name):
        return bool(CONSTANT.match(node.id)) or node.id in bound
    if isinstance(node, ast.FormattedValue):
        return _safe_sql_value(node.value, bound)
    if isinstance(node, ast.BinOp):
        return _safe_sql_value(node.left, bound) and _safe_sql_value(node.right, bound)
    if isinstance(node, ast.Call):
        name = _call_name(node)
        if name in ("int", "len", "float"):
            return True
        if name == ".join" and isinstance(node.func.value, ast.Constant):
            return all(_safe_sql_value(a, bound) for a in node.args)
        return False
    if isinstance(node, (ast.GeneratorExp, ast.ListComp)):
        targets = {n.id for g in node.generators for n in ast.walk(g.target) if isinstance(n, ast.Name)}
        iters_ok = all(_safe_sql_value(g.iter, bound) for g in node.generators)
        return iters_ok and _safe_sql_value(node.elt, bound | targets)
    return False


def sql_findings(trees) -> tuple[list[str], int]:
    """SQL text built with f-strings, % or .format that splices in anything but constants/placeholders."""
    found, checked = [], 0
    for where, tree in trees:
        for node in ast.walk(tree):
            at = f"{where}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.JoinedStr):
                if SQL_WORDS.search("".join(v.value for v in node.values if isinstance(v, ast.Constant))):
                    checked += 1
                    if not all(_safe_sql_value(v, set()) for v in node.values):
                        found.append(f"{at}: f-string SQL with a value: {ast.unparse(node)[:80]}")
            elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) \
                    and isinstance(node.left, ast.Constant) and SQL_WORDS.search(str(node.left.value)):
                found.append(f"{at}: %-formatted SQL")
            elif isinstance(node, ast.Call) and _call_name(node) == ".format" \
                    and isinstance(node.func.value, ast.Constant) \
                    and SQL_WORDS.search(str(node.func.value.value)):
                found.append(f"{at}: .format() SQL")
    return found, checked


def test_no_code_execution_from_data_in_the_package():
    assert code_execution_findings(_package_trees()) == []
    bad = _snippet("import pickle\nx = eval(s)\nsubprocess.run(c, shell=True)\ntorch.load(p)\n"
                   "torch.load(p, weights_only=False)\nyaml.load(t)\nnp.load(f, allow_pickle=True)\n")
    assert len(code_execution_findings(bad)) == 7
    good = _snippet("torch.load(p, weights_only=True)\nyaml.safe_load(t)\nnp.load(f)\nmodel.eval()\n"
                    "re.compile(r)\nsubprocess.run(c, shell=False)\n")
    assert code_execution_findings(good) == []


def test_no_network_access_in_the_package():
    assert network_findings(_package_trees()) == []
    bad = _snippet("import socket\nfrom urllib.request import urlopen\nimport requests\ntorch.hub.load(r)\n")
    assert len(network_findings(bad)) == 4


def test_sql_takes_values_only_as_bound_parameters():
    found, checked = sql_findings(_package_trees())
    assert found == [] and checked >= 5  # the map store's f-string SQL was looked at, and holds no value
    bad = _snippet("""conn.execute(f"SELECT * FROM keyframes WHERE source = '{source}'")\n"""
                   """conn.execute("DELETE FROM meta WHERE key = '%s'" % key)\n"""
                   """conn.execute("UPDATE meta SET value = '{}'".format(v))\n"""
                   """conn.execute(f"{SELECT_SQL} WHERE k.id = {kf_id}")\n""")
    assert len(sql_findings(bad)[0]) == 4
    good = _snippet("""conn.execute(f"SELECT id FROM t WHERE id IN ({', '.join('?' * len(ids))})", ids)\n"""
                    """conn.execute(f"PRAGMA integrity_check({int(n)})")\n""")
    assert sql_findings(good) == ([], 2)


def test_hostile_strings_are_stored_as_data(tmp_path):
    """A source/frame text that is SQL stays text: bound parameters, never spliced into SQL."""
    from dejavu_ros.map.synthetic import random_keyframe

    evil = "x'); DROP TABLE keyframes; --"
    with KeyframeMap.create(tmp_path / "m.db", "ab" * 8, 10, frame_id=evil) as m:
        kf = random_keyframe(np.random.default_rng(0), image_size=(160, 120), num_keypoints=10,
                             grid_hw=(4, 5))
        kf.source, kf.frame_id = evil, evil
        m.append(kf)
    with KeyframeMap.open(tmp_path / "m.db") as m:
        assert m.integrity_check() == "ok" and len(m) == 1
        assert m.get(1).source == evil and m.frame_id == evil


def test_localize_mode_opens_the_map_read_only(assets):
    """Relocalizing many frames never writes the map; a write through its connection is refused."""
    engine = assets.engine
    assert engine.map.read_only
    before = sha256(assets.map), assets.map.stat().st_mtime_ns
    for k in range(3):
        engine.relocalize(small_frame(3.0 * k, seed=k), float(k))
    engine.reload_map()
    with pytest.raises(MapError, match=r"map\.db: map is open read-only"):
        engine.map.append(engine.map.get(1))
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        engine.map._conn.execute("INSERT INTO meta (key, value) VALUES ('x', 'y')")
    assert (sha256(assets.map), assets.map.stat().st_mtime_ns) == before
    assert not (assets.map.parent / "map.db-journal").exists()


def test_model_and_map_paths_are_used_as_given(tmp_path, assets):
    """Paths are opened as files, never expanded by a shell or interpreted: odd names just work."""
    odd = tmp_path / "dir with spaces; $(touch pwned) `id` ?mode=rw#x%20&"
    odd.mkdir()
    model = Path(shutil.copy(assets.model, odd / "model $HOME.safetensors"))
    map_path = Path(shutil.copy(assets.map, odd / "map *.db"))
    run = cli("relocalize", assets.bag, "--image-topic", IMG, "--map", map_path, "--model", model,
              "--no-debug-images")
    assert run.code == 0, run.err
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()
    assert sorted(p.name for p in odd.iterdir()) == ["map *.db", "model $HOME.safetensors"]
