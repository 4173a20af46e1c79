"""Manifests: round trip, path resolution, clear errors, and the builders for the data at hand."""
from __future__ import annotations

import math

import pytest

from conftest import shared
from dejavu_ros.cli.main import main
from dejavu_ros.datasets import builders as datasets
from dejavu_ros.datasets.manifest import ImageRecord, ManifestError, place_distance, read_manifest, write_manifest
from training_support import write_route


def test_round_trip_resolves_relative_paths(tmp_path):
    records = write_route(tmp_path / "data", places=3)
    path = write_manifest(records, tmp_path / "lists" / "m.csv")
    lines = path.read_text().splitlines()
    assert lines[0].startswith("path,place,condition")
    assert lines[1].startswith("../data/")  # relative to the manifest's folder
    again = read_manifest(path)
    assert [r.path for r in again] == [r.path for r in records]
    assert [(r.place, r.condition, r.sequence) for r in again] == [(r.place, r.condition, r.sequence)
                                                                   for r in records]


def test_missing_image_is_named(tmp_path):
    path = write_manifest(write_route(tmp_path, places=2), tmp_path / "m.csv")
    (tmp_path / "night" / "0001.png").unlink()
    with pytest.raises(ManifestError, match="0001.png"):
        read_manifest(path)


def test_one_condition_only_is_refused(tmp_path):
    path = write_manifest(write_route(tmp_path, places=3, conditions=("day",)), tmp_path / "m.csv")
    with pytest.raises(ManifestError, match="at least 2 conditions.*day"):
        read_manifest(path)


def test_missing_column_and_bad_number(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("path,condition\na.png,day\n")
    with pytest.raises(ManifestError, match="lacks column.*place"):
        read_manifest(bad)
    bad.write_text("path,place,condition,x,y\na.png,1,day,abc,2\n")
    with pytest.raises(ManifestError, match=r"bad.csv:2: x/y"):
        read_manifest(bad, check_files=False, min_conditions=1)


def test_place_distance_rules():
    a = ImageRecord("a", "3", "day", "r")
    assert place_distance(a, ImageRecord("b", "7", "night", "r")) == 4
    assert math.isinf(place_distance(a, ImageRecord("b", "3", "day", "other")))
    assert math.isinf(place_distance(ImageRecord("a", "cam1", "d", "w"), ImageRecord("b", "cam2", "d", "w")))
    assert place_distance(ImageRecord("a", "1", "d", "r", x=0, y=0), ImageRecord("b", "9", "d", "r", x=3, y=4)) == 5


def test_make_manifest_cli_folder_split(tmp_path, capsys):
    write_route(tmp_path / "data", places=10)
    code = main(["make-manifest", "folder", str(tmp_path / "data"), "--out", str(tmp_path / "t.csv"),
                 "--val-out", str(tmp_path / "v.csv"), "--holdout-fraction", "0.2"])
    assert code == 0
    train, val = read_manifest(tmp_path / "t.csv"), read_manifest(tmp_path / "v.csv")
    assert {r.place for r in val} == {"8", "9"} and len(train) == 16


def test_make_manifest_cli_reports_missing_root(tmp_path, capsys):
    assert main(["make-manifest", "grief", str(tmp_path / "nope"), "--out", str(tmp_path / "x.csv")]) == 2
    assert "nope" in capsys.readouterr().err


def test_nordland_builder():
    train, val = datasets.nordland(shared("nordland_64x32"), holdout_fraction=0.2)
    places = {r.place for r in train + val}
    assert len(places) == 1788 and {r.condition for r in train} == {"summer", "winter"}
    assert min(int(r.place) for r in val) > max(int(r.place) for r in train)
    assert len({r.place for r in val}) == round(0.2 * 1788)


def test_grief_and_tilde_builders():
    train, val = datasets.grief(shared("grief_seasons"), holdout_locations=(5,))
    assert len(train) + len(val) == 120 and {r.place for r in val} == {"loc05"}
    assert len({r.condition for r in train}) == 12
    train, val = datasets.tilde(shared("tilde_webcam"), holdout_scenes=("mexico",))
    assert {r.place for r in val} == {"mexico"} and all(r.aligned for r in train + val)
    assert {r.condition for r in train} == {"dark", "mid", "bright"}
