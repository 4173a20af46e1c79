"""RobotCar Seasons reader and the place manifest, on a synthetic folder with the official layout."""
from __future__ import annotations

import csv
from types import SimpleNamespace

import numpy as np
import pytest

from dejavu_ros.datasets.robotcar.errors import RobotCarFormatError
from dejavu_ros.datasets.robotcar.manifest import MANIFEST_COLUMNS, place_centres, write_manifest
from dejavu_ros.datasets.robotcar.seasons import SeasonsDataset
from dejavu_ros.datasets.manifest import read_manifest

from robotcar_support import REAR_EXTRINSICS, T0, make_seasons, pose_at


def test_reader_yields_records_with_poses_and_calibration(tmp_path):
    xs = make_seasons(tmp_path)
    data = SeasonsDataset(tmp_path)
    assert data.conditions == ["night", "overcast-reference"]
    assert data.cameras("night") == ["left", "rear"]
    records = list(data.records())
    assert len(records) == len(xs["overcast-reference"]) + len(xs["night"]) + 3
    night_rear = [r for r in records if r.condition == "night" and r.camera == "rear"]
    assert [r.stamp_us for r in night_rear] == [T0 + i * 250_000 for i in range(5)]
    for r, x in zip(night_rear, xs["night"]):
        np.testing.assert_allclose(r.pose, pose_at(x), atol=1e-6)
        assert r.name == f"night/rear/{r.path.name}"
    rear = night_rear[0]
    np.testing.assert_allclose(rear.intrinsics.k, [[400, 0, 508.222931], [0, 401.5, 498.187378], [0, 0, 1]])
    assert (rear.intrinsics.width, rear.intrinsics.height) == (48, 32)
    np.testing.assert_allclose(rear.extrinsics, REAR_EXTRINSICS)
    left = [r for r in records if r.camera == "left"]
    assert all(r.pose is None and r.extrinsics is None for r in left)
    rgb = rear.load_rgb()
    assert rgb.shape == (32, 48, 3) and rgb[..., 0].mean() > 180 and rgb[..., 2].mean() < 40  # RGB order
    assert data.problems.total == 1 and "robotcar_v2_train.txt:2" in data.problems.messages[0]


def test_reader_filters_and_errors(tmp_path):
    make_seasons(tmp_path)
    data = SeasonsDataset(tmp_path)
    assert {r.camera for r in data.records(with_pose_only=True)} == {"rear"}
    assert {r.condition for r in data.records(conditions=["night"], cameras=["left"])} == {"night"}
    with pytest.raises(RobotCarFormatError, match="no condition snow; available: night, overcast-reference"):
        list(data.records(conditions=["snow"]))
    (tmp_path / "intrinsics" / "left_intrinsics.txt").unlink()
    with pytest.raises(RobotCarFormatError, match="intrinsics file not found: .*left_intrinsics.txt"):
        list(SeasonsDataset(tmp_path).records(cameras=["left"]))
    with pytest.raises(RobotCarFormatError, match="not a RobotCar Seasons folder"):
        SeasonsDataset(tmp_path / "images")


def test_place_centres_do_not_duplicate_on_revisits():
    there = [[x, 0, 0] for x in range(0, 41, 2)]
    back = [[x, 0, 0] for x in range(39, -1, -3)]
    centres = place_centres(np.array(there + back, float), 10.0)
    np.testing.assert_allclose(centres[:, 0], [0, 10, 20, 30, 40])


def test_manifest(tmp_path):
    xs = make_seasons(tmp_path / "seasons")
    data = SeasonsDataset(tmp_path / "seasons")
    out = tmp_path / "manifests" / "train.csv"
    summary = write_manifest(data.records(), out, place_spacing_m=10.0)
    assert summary.places == 5 and summary.without_pose == 3 and summary.too_far == 1
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0].keys()) == MANIFEST_COLUMNS
    assert summary.rows == len(rows) == len(xs["overcast-reference"]) + 4
    night = [r for r in rows if r["condition"] == "night"]
    # centres lie every 10 m along the reference (x = 0, 10, ..., 40; y = x / 2)
    assert [int(r["place"]) for r in night] == [0, 1, 2, 4]
    assert [float(r["x"]) for r in night] == [1.0, 9.0, 21.0, 39.0]
    assert {r["sequence"] for r in rows} == {"rear"}  # places are shared by all conditions of a camera
    assert float(night[1]["stamp"]) == pytest.approx(T0 * 1e-6 + 0.25)
    for r in rows:
        assert (out.parent / r["path"]).resolve().is_file()
    ref_places = {int(r["place"]) for r in rows if r["condition"] == "overcast-reference"}
    assert ref_places == {0, 1, 2, 3, 4}
    with pytest.raises(RobotCarFormatError, match="no posed records of the reference condition 'sun'"):
        write_manifest(data.records(), out, reference_condition="sun")


def test_manifest_from_generic_records_with_a_y_down_world(tmp_path):
    """Any records with path/condition/stamp/pose work; the flat (vertical) axis is left out of x, y."""
    def record(condition, i, along):
        pose = np.eye(4)
        pose[:3, 3] = [along, 1.5 + 0.01 * i, 3.0 * along]  # y is the (nearly constant) vertical axis
        path = tmp_path / "img" / f"{condition}_{i}.png"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"")
        return SimpleNamespace(path=path, condition=condition, stamp=100.0 + i, pose=pose, camera="front")

    records = [record("day", i, a) for i, a in enumerate(range(0, 30, 2))]
    records += [record("night", i, a) for i, a in enumerate((0.5, 13.0, 27.0))]
    out = tmp_path / "m.csv"
    summary = write_manifest(records, out, place_spacing_m=10.0, reference_condition="day")
    rows = list(csv.DictReader(out.open()))
    night = [r for r in rows if r["condition"] == "night"]
    assert [(float(r["x"]), float(r["y"])) for r in night] == [(0.5, 1.5), (13.0, 39.0), (27.0, 81.0)]
    # 3.16 m per unit along the route: centres at along = 0, 4, 8, ..., 28
    assert summary.places == 8 and [int(r["place"]) for r in night] == [0, 3, 7]
    manifest = read_manifest(out, check_files=True)
    assert {r.condition for r in manifest} == {"day", "night"}
    assert all(r.sequence == "front" for r in manifest)
