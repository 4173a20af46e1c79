"""What the bad-input tables share: inputs built once per session, the CLI runner, the row type.

Each ``test_bad_input_<area>.py`` holds one area's table: every row names an action, the error
type (or CLI exit status) it must end in, a pattern the message must match (it has to name the
file, topic, field or parameter at fault) and, where something has state, a check that things
still work afterwards. The shared inputs come from conftest's ``assets`` fixture.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import pytest
import torch

from dejavu_ros.cli.main import main
from dejavu_ros.config import DejavuConfig
from dejavu_ros.demo.run import SIDE_LOOKING
from dejavu_ros.demo.world import make_street, render
from dejavu_ros.features.checkpoint import save_checkpoint
from dejavu_ros.features.config import FeatureConfig
from dejavu_ros.features.dvf import DVF, DVFConfig
from dejavu_ros.features.extractor import FeatureExtractor
from dejavu_ros.output.bag_writer import BagWriter
from dejavu_ros.output.messages import MessageTypes, header_msg, image_msg
from dejavu_ros.relocalization.engine import RelocalizationEngine

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


def odom_msg(mt: MessageTypes, stamp: int, position, orientation=SIDE_LOOKING):
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
    return bag.path  # the bag folder (a .mcap suffix names the storage)


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


def make_assets(tmp_path_factory):
    """Build the shared inputs once per session (conftest's ``assets`` fixture)."""
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


def write_text(name: str, text: str):
    def make(env) -> Path:
        (env.tmp / name).write_text(text)
        return env.tmp / name
    return make


def no_map_written(env, _outcome=None):
    assert not (env.tmp / "built.db").exists()


# --- the table's rows and how a row is checked ---------------------------------------------------

@dataclass
class Case:
    id: str
    action: Callable[[Env], Any]
    expect: type | int | None  # exception type, CLI exit status, or None: returns normally
    match: str | None = None  # regex over the exception message / the CLI's stderr (or stdout)
    after: Callable[[Env, Any], None] | None = None
    xfail: str | None = None  # a known bug: the fix is proposed in the reliability report


ROS_PARAMS = "/**:\n  ros__parameters:\n    matching:\n      {}\n"


def _error_line(run: CliRun) -> str:
    """The CLI's error: one line, the last one on stderr (progress bars may come before it)."""
    lines = [line for line in run.err.replace("\r", "\n").splitlines() if line.strip()]
    assert lines and lines[-1].startswith("dejavu-ros "), run.err
    assert ": error: " in lines[-1], run.err
    return lines[-1]


def case_params(cases: list[Case]) -> list:
    """pytest parameters of a table: one test per row, named by its id."""
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids)), "row ids must be unique"
    return [pytest.param(c, id=c.id, marks=[pytest.mark.xfail(strict=True, reason=c.xfail)] if c.xfail else [])
            for c in cases]


def check_case(case: Case, assets: Assets, tmp_path: Path) -> None:
    """Run one row: the action must end as the row says, then its after-check must hold."""
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
