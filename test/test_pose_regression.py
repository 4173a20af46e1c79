"""Pose regression on frozen DVF maps against RGB: the heads learn, the data sets hold the right truth,
bad input is refused with a message that names the problem."""
from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import shared
from dejavu_ros.evaluation import pose_regression as pr
from engine_fixtures import any_extractor


@pytest.fixture(scope="module")
def street_run():
    data = pr.demo_street_data(length_m=20.0, conditions=("day", "night"))
    return data, pr.run_pose_regression({"street": data}, any_extractor(), steps=60, batch=16)["street"]


def test_both_inputs_are_trained_and_tested_on_every_condition(street_run):
    data, result = street_run
    assert result["train_size"] == 20 and result["test_sizes"] == {"day": 7, "night": 7}
    for kind in ("dvf", "rgb"):
        assert set(result[kind]) == {"train", "day", "night"}
        night = result[kind]["night"]
        assert math.isfinite(night["median_position"]) and math.isfinite(night["median_rotation_deg"])
    rows = pr.table({"street": result})
    assert [r["test"] for r in rows] == ["day", "night"] and rows[1]["dvf_position"] == round(
        result["dvf"]["night"]["median_position"], 2)


def test_a_trained_head_beats_predicting_the_mean_position(street_run):
    _, result = street_run
    baseline = result["baseline_mean_position"]
    for kind in ("dvf", "rgb"):
        assert result[kind]["train"]["median_position"] < 0.5 * baseline["train"], kind
        assert result[kind]["day"]["median_position"] < baseline["day"], kind


def test_pose_errors_measure_position_and_rotation():
    truth = np.array([[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]])
    quarter_turn = np.array([[0.0, 0.0, math.sin(math.pi / 4), math.cos(math.pi / 4)]])
    err = pr.pose_errors(np.array([[4.0, 4.0, 0.0]]), quarter_turn, truth)
    assert err["median_position"] == pytest.approx(5.0) and err["median_rotation_deg"] == pytest.approx(90.0)
    assert math.isnan(pr.pose_errors(np.array([[2.0]]), None, np.array([[1.0]]))["median_rotation_deg"])


def _data(train_images, train_poses, test_images=None, test_poses=None):
    image = np.zeros((128, 128, 3), np.uint8)
    return pr.PoseData(train_images, train_poses, {"night": test_images or [image]},
                       {"night": np.zeros((1, 7)) if test_poses is None else test_poses})


@pytest.mark.parametrize("make, message", [
    (lambda im: _data([], np.zeros((0, 7))), "train: no images"),
    (lambda im: _data([im, im], np.zeros((3, 7))), "2 images but poses of shape (3, 7)"),
    (lambda im: _data([im], np.zeros((1, 7))), "quaternion (columns 4-7) has zero length"),
    (lambda im: _data([im], np.full((1, 1), np.nan)), "NaN or Inf"),
    (lambda im: _data([im], np.ones((1, 1)), test_poses=np.ones((1, 7))), "poses have 7 columns"),
    (lambda im: _data([im], np.ones((1, 1)), [np.zeros((64, 128, 3), np.uint8)], np.ones((1, 1))), "one size"),
    (lambda im: pr.PoseData([im], np.ones((1, 1)), {}, {}), "at least one"),
])
def test_bad_data_is_refused_before_any_work(make, message):
    image = np.zeros((128, 128, 3), np.uint8)
    with pytest.raises(ValueError) as info:
        pr.run_pose_regression({"bad": make(image)}, extractor=None)
    assert isinstance(info.value, pr.PoseDataError) and message in str(info.value)


def test_no_data_sets_or_no_steps_is_an_error():
    with pytest.raises(pr.PoseDataError, match="no data sets"):
        pr.run_pose_regression({}, extractor=None)
    with pytest.raises(pr.PoseDataError, match="steps must be"):
        pr.train_head(np.zeros((1, 3, 8, 8)), np.zeros((1, 1)), steps=0)


def test_nordland_positions_are_ten_metres_per_place():
    data = pr.nordland_data(shared("nordland_64x32"), range(1, 21), every=5)
    assert data.train_poses[:, 0].tolist() == [10.0, 60.0, 110.0, 160.0]
    assert np.array_equal(data.test_poses["winter"], data.train_poses)
    assert data.train_images[0].shape == (128, 256, 3) and len(data.test_images["winter"]) == 4


def test_grief_targets_are_the_ground_truth_offsets_centred_on_the_training_months():
    root = shared("grief_seasons")
    data = pr.grief_data(root)
    assert len(data.train_images) == len(data.test_images["other_months"]) == 60 and data.unit == "px"
    train = data.train_poses[:, 0].reshape(2, 5, 6)  # sets (michigan, stromovka) × locations × sessions 1-6
    assert np.allclose(train.mean(axis=2), 0.0)
    assert train[1, 0, 1] - train[1, 0, 0] == pytest.approx(69.0)  # stromovka L1, session 1 → 2 (SOURCE.txt)
    gt = np.loadtxt(root / "michigan_monthly" / "ground_truth" / "location_2.txt")
    test = data.test_poses["other_months"][:, 0].reshape(2, 5, 6)
    assert test[0, 1, 1] - train[0, 1, 0] == pytest.approx(gt[0, 7])  # michigan L2, session 1 → 8
