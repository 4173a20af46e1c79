"""Triplet composition as DESIGN.md: roles, conditions, negative distance, consecutive frames; night augmentation."""
from __future__ import annotations

import numpy as np
import torch
import pytest

from dejavu_ros import schema
from dejavu_ros.training.augment import photometric, simulate_low_light
from dejavu_ros.training.config import AugmentSection, TrainConfig
from dejavu_ros.datasets.manifest import ManifestError
from dejavu_ros.training.sampling import TripletDataset, TripletSampler
from training_support import write_route


def _cfg(**flat):
    return schema.apply_flat(TrainConfig(), {"data.negative_min_places": 5, "augment.enabled": False, **flat})


@pytest.fixture(scope="module")
def route(tmp_path_factory):
    return write_route(tmp_path_factory.mktemp("route"), places=20, size=(64, 80))


def test_route_triplets_follow_the_rules(route):
    sampler = TripletSampler(route, _cfg())
    rng = np.random.default_rng(0)
    for _ in range(200):
        t = sampler.draw(rng)
        a0, a1, p0, p1, n0, n1 = (route[i] for i in t.roles)
        assert p0.place == a0.place and p0.condition != a0.condition
        assert abs(int(n0.place) - int(a0.place)) >= 5
        # second frames: the next place along the route, same condition as their first frame
        assert abs(int(a1.place) - int(a0.place)) == 1 and a1.condition == a0.condition
        assert p1.place == a1.place and p1.condition == p0.condition
        assert abs(int(n1.place) - int(n0.place)) == 1 and n1.condition == n0.condition
        assert not t.aligned


def test_webcam_triplets_reuse_the_frame_and_are_aligned(tmp_path):
    cams = write_route(tmp_path / "w", places=3, size=(64, 80), sequence="cams", aligned=True,
                       place_names=["north", "south", "east"])
    sampler = TripletSampler(cams, _cfg())
    rng = np.random.default_rng(1)
    for _ in range(50):
        t = sampler.draw(rng)
        a0, a1, p0, p1, n0, n1 = t.roles
        assert a1 == a0 and p1 == p0 and n1 == n0 and t.aligned
        assert cams[n0].place != cams[a0].place


def test_no_positive_is_a_clear_error(tmp_path):
    one = write_route(tmp_path, places=4, conditions=("day",), size=(64, 80))
    with pytest.raises(ManifestError, match="another condition"):
        TripletSampler(one, _cfg())


def test_dataset_items_and_shared_crop(tmp_path):
    cams = write_route(tmp_path / "w", places=2, size=(150, 220), sequence="cams", aligned=True,
                       place_names=["a", "b"], conditions=("day", "day2"))
    cfg = _cfg(**{"data.crop_height": 128, "data.crop_width": 160})
    ds = TripletDataset(cams, cfg, scaling="fixed")
    item = ds[3]
    assert tuple(item["images"].shape) == (6, 3, 128, 160) and bool(item["aligned"])
    # 'day2' images are identical to 'day' ones: a shared crop window gives identical pixels
    assert np.allclose(item["images"][0].numpy(), item["images"][2].numpy())
    again = ds[3]
    assert np.array_equal(item["images"].numpy(), again["images"].numpy())  # reproducible per (epoch, index)
    grey = TripletDataset(cams, cfg, scaling="fixed", colour="grey")[3]["images"]
    assert torch.equal(grey[:, 0], grey[:, 1]) and torch.equal(grey[:, 1], grey[:, 2])  # the luma, three times


def test_low_light_simulation_looks_like_a_night_frame():
    rng = np.random.default_rng(0)
    grey = np.full((64, 96, 3), 0.6, np.float32)
    night = simulate_low_light(grey, rng)
    assert night.dtype == np.float32 and night.shape == grey.shape
    assert np.allclose(night * 255, np.round(night * 255), atol=1e-4)  # stored with 8-bit levels
    assert night.mean() < 0.25 * grey.mean()
    assert night[:8].mean() <= night[-8:].mean() + 0.01  # less light towards the top (no sky light)
    assert night[..., 0].mean() >= night[..., 2].mean()  # warm lamps: never bluer than neutral
    assert night.std() > 0  # sensor noise
    again = simulate_low_light(grey, np.random.default_rng(0))
    assert np.array_equal(night, again)  # the training seed reproduces it
    cfg = AugmentSection(gamma=[1.0, 1.0], darken=[1.0, 1.0], noise_std=0.0, colour_temperature=0.0,
                         blur_sigma=0.0, low_light=1.0)
    assert photometric((grey * 255).astype(np.uint8), cfg, np.random.default_rng(1)).mean() < 0.2
    cfg.low_light = 0.0
    assert photometric((grey * 255).astype(np.uint8), cfg, np.random.default_rng(1)).mean() == pytest.approx(
        153 / 255, abs=1e-6)
