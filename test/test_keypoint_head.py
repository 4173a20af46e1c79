"""The DVF keypoint head (``matching.keypoints: dvf_head``): its parts, its file, and its training on
pixel-aligned webcams, where the correct match of every pixel is known."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from dejavu_ros.features.keypoint_head import (KeypointHead, KeypointHeadError, distinctiveness, load_head,
                                               save_head)
from dejavu_ros.matching import MatchingConfig, corner_features
from dejavu_ros.matching.keypoints import head_keypoints
from dejavu_ros.training.keypoint_head import (KeypointTrainConfig, centre_crop, label_keyframe, oxblue_sets,
                                               ranking_auc, tilde_sets, train_head)

from conftest import shared


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_distinctiveness_is_high_only_where_the_descriptor_differs_from_its_neighbours(dtype):
    dense = torch.zeros(4, 32, 32, dtype=dtype)
    dense[0] = 1.0
    dense[:, 16, 16] = torch.tensor([0.0, 1.0, 0.0, 0.0], dtype=dtype)  # one odd pixel
    d = distinctiveness(dense, offset=2)[0, 0]
    assert d.dtype == dtype and d.shape == (32, 32)
    assert d[16, 16] == pytest.approx(1.0) and d[5, 5] == pytest.approx(0.0, abs=1e-6)
    assert d[16, 18] == pytest.approx(0.0, abs=1e-6)  # the odd pixel's neighbour still has its like around


def test_head_keypoints_are_separated_sub_pixel_maxima_strongest_first():
    yy, xx = torch.meshgrid(torch.arange(60.0), torch.arange(80.0), indexing="ij")
    peaks = [(20.3, 30.0, 1.0), (50.0, 40.6, 0.8), (52.0, 42.6, 0.15)]  # the third: a shoulder of the second
    score = sum(a * torch.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 8.0) for x, y, a in peaks)
    xy = head_keypoints(score, MatchingConfig(min_distance=8.0, keypoint_threshold=0.2))
    assert len(xy) == 2
    np.testing.assert_allclose(xy[0], [20.3, 30.0], atol=0.15)
    np.testing.assert_allclose(xy[1], [50.0, 40.6], atol=0.5)
    assert len(head_keypoints(score, MatchingConfig(keypoint_threshold=0.95))) == 1
    assert len(head_keypoints(score, MatchingConfig(max_corners=8, min_distance=8.0))) == 2
    assert head_keypoints(torch.zeros(6, 6)).shape == (0, 2)


def test_head_file_round_trip_and_clear_errors(tmp_path):
    head = KeypointHead(6, hidden=4)
    path = tmp_path / "head.safetensors"
    save_head(head, path, "abc123", {"steps": 3})
    loaded, meta = load_head(path)
    assert meta["backbone_fingerprint"] == "abc123" and meta["info"] == {"steps": 3}
    x = torch.randn(1, 6, 20, 24)
    torch.testing.assert_close(loaded(x), head.eval()(x))
    with pytest.raises(KeypointHeadError, match="not found"):
        load_head(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(KeypointHeadError, match="not a readable safetensors"):
        load_head(tmp_path / "junk.safetensors")
    with pytest.raises(KeypointHeadError, match="expects 6-dimensional"):
        loaded(torch.randn(1, 5, 8, 8))


def test_head_save_keeps_the_old_file_when_it_fails_and_is_readable_by_all(tmp_path, monkeypatch):
    import dejavu_ros.features.checkpoint as ckpt

    path = tmp_path / "head.safetensors"
    save_head(KeypointHead(6, hidden=4), path, "abc123")
    before = path.read_bytes()
    assert path.stat().st_mode & 0o777 == 0o644  # heads are installed and shared like the weights

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(ckpt, "save_file", boom)
    with pytest.raises(OSError, match="disk full"):
        save_head(KeypointHead(6, hidden=8), path, "def456")
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["head.safetensors"]


def test_a_dvf_model_file_is_not_taken_for_a_head():
    from dejavu_ros.resources import default_model_path

    with pytest.raises(KeypointHeadError, match="not a keypoint head"):
        load_head(default_model_path())


def test_training_splits_keep_the_benchmark_frames_and_held_out_days_out():
    cfg = KeypointTrainConfig()
    tilde = tilde_sets(shared("tilde_webcam"), cfg)
    assert {name for name, _, _ in tilde} == {"tilde/chamonix", "tilde/courbevoie", "tilde/panorama", "tilde/stlouis"}
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from bench_matching_webcams import webcam_pairs

    bench = {p for pairs in webcam_pairs(shared(), 8).values() for pair in pairs for p in pair}
    used = {p for _, kfs, nights in tilde for p in kfs + nights}
    assert used and not used & bench
    ox = oxblue_sets(shared("oxblue_webcam"), cfg)
    assert ox and all(p.name < "2023-06-22" for _, kfs, nights in ox for p in kfs + nights)


@pytest.mark.slow
def test_head_learns_where_night_matches_land_on_a_real_webcam():
    """Labels from the engine's dense search between a day keyframe and real nights of one TILDE
    webcam; a head fitted on one keyframe ranks the pixels of another day keyframe of the same camera
    (scored against its own nights) better than chance, and its keypoints are matchable more often
    than the labelled pixels on average."""
    from engine_fixtures import trained_extractor
    from dejavu_ros.io.images import read_rgb

    fe = trained_extractor()
    cfg = KeypointTrainConfig(nights=3, steps=60, grid_px=8)
    name, keyframes, nights = tilde_sets(shared("tilde_webcam"), cfg)[1]
    night_images = [centre_crop(read_rgb(p)) for p in nights]
    rng = np.random.default_rng(0)
    train = label_keyframe(fe, centre_crop(read_rgb(keyframes[-1])), night_images, cfg, rng, name)
    other = label_keyframe(fe, centre_crop(read_rgb(keyframes[0])), night_images, cfg, rng, name)
    assert 0.02 < float(train.target.mean()) < 0.9  # some pixels match at night, far from all
    head, losses = train_head([train], cfg, fe.descriptor_dim)
    assert np.mean(losses[-10:]) < np.mean(losses[:10])
    assert ranking_auc(head, [other]) > 0.6


def test_dvf_head_keypoints_reach_the_map_builder(tmp_path):
    from engine_fixtures import any_extractor

    fe = any_extractor()
    path = tmp_path / "head.safetensors"
    save_head(KeypointHead(fe.descriptor_dim, hidden=4), path, fe.fingerprint)
    rng = np.random.default_rng(1)
    image = (rng.random((96, 128, 3)) * 255).astype(np.uint8)
    dense = fe.extract(image)
    cfg = dataclasses.replace(MatchingConfig(), keypoints="dvf_head", keypoint_head=str(path),
                              keypoint_threshold=0.0, max_corners=40)
    xy, desc = corner_features(image, dense, cfg)
    assert 0 < len(xy) <= 40 and desc.shape == (len(xy), fe.descriptor_dim)
    assert (xy[:, 0] < 128).all() and (xy[:, 1] < 96).all()
    bad = dataclasses.replace(cfg, keypoint_head=str(tmp_path / "nope.safetensors"))
    with pytest.raises(KeypointHeadError, match="not found"):
        corner_features(image, dense, bad)
