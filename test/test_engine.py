"""The relocalization engine on real images: ranking, verification, mapping rules, bad input."""
import copy

import numpy as np
import torch
import pytest

from dejavu_ros.features.checkpoint import load_checkpoint
from dejavu_ros.features.extractor import FeatureExtractor
from dejavu_ros.io.images import read_rgb
from dejavu_ros.resources import default_model_path, models_dir
from dejavu_ros.errors import DejavuError
from dejavu_ros.geometry import CameraIntrinsics
from dejavu_ros.map.store import KeyframeMap
from dejavu_ros.relocalization.engine import RelocalizationEngine
from dejavu_ros.relocalization.result import KeyframeDecision

from conftest import shared
from engine_fixtures import any_extractor, config_for, trained_extractor

IDENTITY = [0.0, 0.0, 0.0, 1.0]


def triplet(name):
    return read_rgb(shared("robotcar_dejavu_triplets", f"image_{name}.png"))


def robotcar_map(tmp_path, extractor):
    """Keyframes {anchor_0 (id 1, x=0), negative_0 (id 2, x=100)}."""
    engine = RelocalizationEngine.from_config(config_for(tmp_path / "m.db"), map_mode="map", extractor=extractor)
    assert engine.add_frame(triplet("anchor_0"), 0.0, [0, 0, 0], IDENTITY).added
    assert engine.add_frame(triplet("negative_0"), 1.0, [100, 0, 0], IDENTITY).added
    return engine


def test_same_condition_query_ranks_the_same_place_first(tmp_path):
    engine = robotcar_map(tmp_path, any_extractor())
    result = engine.relocalize(triplet("anchor_1"), 5.0)
    assert [c.keyframe_id for c in result.candidates] == [1, 2]
    assert result.candidates[0].cx_score > result.candidates[1].cx_score
    assert set(result.timings_ms) >= {"features", "shortlist", "rerank", "verification", "total"}
    for name in ("positive_0", "positive_1"):  # night queries: both places ranked, scores in range
        r = engine.relocalize(triplet(name), 6.0)
        assert sorted(c.keyframe_id for c in r.candidates) == [1, 2]
        assert all(0.0 < c.cx_score <= 1.0 and 0.0 <= c.confidence <= 1.0 for c in r.candidates)


@pytest.mark.xfail(strict=True, reason="the shipped CPU model, fed RGB, ranks the sodium-lit night positives of this "
                   "street below the other day place; fed grey it ranks them right (next test), but neither grey "
                   "model met the trust rule (models/README.md); strict: passing fails")
def test_night_queries_rank_the_day_anchor_first_with_the_default_model(tmp_path):
    engine = robotcar_map(tmp_path, trained_extractor())
    for name in ("positive_0", "positive_1"):
        result = engine.relocalize(triplet(name), 6.0)
        assert result.candidates[0].keyframe_id == 1, (name, result.candidates)


@pytest.mark.parametrize("weights", ["shipped weights, grey", "candidates/dvf_arm_g.safetensors"])
def test_grey_input_ranks_the_night_queries_day_anchor_first(tmp_path, weights):
    """Fed the luma (``colour: grey``), the night frames' sodium cast no longer pulls them towards the
    other day place (RGB: the strict xfail above): the shipped weights with the grey convention, and
    arm G, trained with it. Neither is the default (trust: models/README.md)."""
    if weights.endswith(".safetensors"):
        model, _ = load_checkpoint(models_dir() / weights)
    else:
        model, _ = load_checkpoint(default_model_path())
        model.cfg.colour = "grey"
    assert model.cfg.colour == "grey"
    engine = robotcar_map(tmp_path, FeatureExtractor(model, device="cpu"))
    for name in ("positive_0", "positive_1"):
        result = engine.relocalize(triplet(name), 6.0)
        assert [c.keyframe_id for c in result.candidates] == [1, 2], (name, result.candidates)
        assert result.candidates[0].cx_score > 1.2 * result.candidates[1].cx_score


def test_map_is_read_back_by_a_localize_engine(tmp_path):
    extractor = any_extractor()
    robotcar_map(tmp_path, extractor).close()
    engine = RelocalizationEngine.from_config(config_for(tmp_path / "m.db"), map_mode="localize",
                                              extractor=extractor)
    assert engine.map_size == 2 and engine.map.read_only
    ids, positions, _ = engine.keyframe_poses()
    assert list(ids) == [1, 2] and positions[1][0] == 100
    assert engine.keyframe_thumbnail(1).shape[2] == 3
    assert engine.keyframe_image_size(1) == (512, 512)
    with pytest.raises(DejavuError, match="map opened for writing"):
        engine.add_frame(triplet("anchor_1"), 2.0, [0, 0, 0], IDENTITY)


def test_empty_map_is_a_result_not_an_exception(tmp_path):
    engine = RelocalizationEngine.from_config(config_for(tmp_path / "e.db"), map_mode="map",
                                              extractor=any_extractor())
    result = engine.relocalize(triplet("anchor_1"), 1.0)
    assert result.status == "map_empty" and "map is empty" in result.message and not result.candidates


def test_bad_poses_are_skipped_with_a_reason(tmp_path):
    engine = RelocalizationEngine.from_config(config_for(tmp_path / "p.db"), map_mode="map",
                                              extractor=any_extractor())
    image = triplet("anchor_0")
    decision = engine.add_frame(image, 0.0, [np.nan, 0, 0], IDENTITY)
    assert not decision.added and decision.reason == "invalid_pose: non-finite position [nan, 0.0, 0.0]"
    decision = engine.add_frame(image, 0.0, [0, 0, 0], [0, 0, 0, 2.0])
    assert not decision.added and "quaternion norm" in decision.reason
    assert engine.add_frame(image, 0.0, [0, 0, 0], IDENTITY).added
    # a second frame at the same spot is not a new keyframe; moving far enough is
    assert engine.add_frame(image, 0.5, [0.1, 0, 0], IDENTITY) == KeyframeDecision(False, "no_change")
    assert engine.add_frame(image, 1.0, [5.0, 0, 0], IDENTITY).reason == "distance"
    assert len(KeyframeMap.open(tmp_path / "p.db")) == 2


def tum_frames():
    folder = shared("tum_fr3_sequence")
    return sorted(folder.glob("*.png"))


TUM_CAMERA = CameraIntrinsics.from_fxfycxcy(535.4, 539.2, 320.1, 247.6, 640, 480)


@pytest.mark.slow
def test_consecutive_tum_frames_verify_with_the_essential_matrix(tmp_path):
    frames = tum_frames()
    cfg = config_for(tmp_path / "t.db")
    engine = RelocalizationEngine.from_config(cfg, map_mode="map", extractor=trained_extractor())
    engine.add_frame(read_rgb(frames[0]), 0.0, [0, 0, 0], IDENTITY, camera=TUM_CAMERA)
    near = engine.relocalize(read_rgb(frames[1]), 1.0, TUM_CAMERA)
    assert near.relocalized, near.message
    v = near.verification
    assert v.model == "essential" and v.num_inliers >= 30
    angle = np.degrees(np.arccos(np.clip((np.trace(v.rotation) - 1) / 2, -1, 1)))
    assert angle < 15.0  # consecutive frames of a hand-held sequence
    far = engine.relocalize(read_rgb(frames[-1]), 2.0, TUM_CAMERA)
    assert far.verification is None or far.verification.num_inliers < v.num_inliers


@pytest.mark.parametrize("method", ["sift", "dvf+sift"])
def test_sift_matches_are_stored_with_keyframes_and_join_the_ransac(tmp_path, method):
    frames = tum_frames()
    cfg = config_for(tmp_path / "s.db")
    cfg.matching.method = method
    engine = RelocalizationEngine.from_config(cfg, map_mode="map", extractor=trained_extractor())
    assert engine.add_frame(read_rgb(frames[0]), 0.0, [0, 0, 0], IDENTITY, camera=TUM_CAMERA).added
    kf = engine.map.get(engine.map.ids()[0])
    assert kf.sift_keypoints is not None and len(kf.sift_keypoints) > 100
    result = engine.relocalize(read_rgb(frames[1]), 1.0, TUM_CAMERA)
    v = result.verification
    assert v is not None and v.model == "essential" and v.num_inliers >= 30
    angle = np.degrees(np.arccos(np.clip((np.trace(v.rotation) - 1) / 2, -1, 1)))
    assert angle < 15.0
    # a keyframe mapped without SIFT still verifies (the DVF matches stand in)
    cfg2 = config_for(tmp_path / "plain.db")
    plain = RelocalizationEngine.from_config(cfg2, map_mode="map", extractor=trained_extractor())
    assert plain.add_frame(read_rgb(frames[0]), 0.0, [0, 0, 0], IDENTITY, camera=TUM_CAMERA).added
    cfg2.matching.method = method
    plain.update_config(cfg2)
    assert plain.relocalize(read_rgb(frames[1]), 1.0, TUM_CAMERA).verification.num_inliers >= 30


@pytest.mark.parametrize("sequence_length", [0, 3])
def test_the_coarse_prerank_chooses_the_shortlist_only_in_route_localization(tmp_path, sequence_length):
    import torch

    from dejavu_ros.similarity.cx import contextual_similarity
    from dejavu_ros.similarity.grid import pooled_grid

    engine = robotcar_map(tmp_path, any_extractor())
    assert engine.add_frame(triplet("negative_1"), 2.0, [200, 0, 0], IDENTITY).added
    engine.cfg.engine.shortlist_k, engine.cfg.engine.sequence_length = 1, sequence_length
    query = triplet("positive_0")  # a night frame the cosine and the coarse CX rank differently
    result = engine.relocalize(query, 5.0)
    frame = engine_frame(engine, query)
    cosine_best = int(torch.argmax(engine._global @ frame.global_desc))
    coarse = contextual_similarity(pooled_grid(frame.grid[None], 4)[0], pooled_grid(engine._grids, 4))
    coarse_best = int(torch.argmax(coarse))
    assert coarse_best != cosine_best  # else this test could not tell the modes apart
    expected = coarse_best if sequence_length else cosine_best
    assert result.candidates[0].keyframe_id == int(engine._ids[expected])
    assert ("prerank" in result.timings_ms) == bool(sequence_length)
    engine.cfg.engine.prerank_k = 0  # off: the cosine's shortlist in route localization too
    assert engine.relocalize(query, 6.0).candidates[0].keyframe_id == int(engine._ids[cosine_best])


def engine_frame(engine, image):
    from dejavu_ros.relocalization.frame import describe

    return describe(image, engine.extractor, engine.cfg, engine.grid_shape)


def test_the_route_baseline_counts_frames_after_motion_and_follows_its_parameter(tmp_path):
    frames = tum_frames()
    cfg = config_for(tmp_path / "route.db")
    cfg.engine.sequence_length = 3
    engine = RelocalizationEngine.from_config(cfg, map_mode="map", extractor=trained_extractor())
    picks = frames[:: max(1, len(frames) // 4)][:4]
    for i, path in enumerate(picks):
        engine.add_frame(read_rgb(path), float(i), [2.0 * i, 0, 0], IDENTITY, camera=TUM_CAMERA)
    assert engine.map_size >= 2
    query = read_rgb(frames[1])
    engine.relocalize(query, 10.0, TUM_CAMERA, odometry=np.zeros(3))
    step = engine._route_traversals().median_step_m  # the median distance between consecutive keyframes
    assert step > 0
    for t, x in enumerate([0.0, 0.0, 0.75 * step, 1.5 * step]):  # stopped, then ¾ of a step per frame
        engine.relocalize(query, 11.0 + t, TUM_CAMERA, odometry=np.array([x, 0.0, 0.0]))
    assert len(engine._baseline.history) == 3  # the first frame, then one per move
    changed = copy.deepcopy(cfg)  # a parameter change arrives as a new config (the node builds one)
    changed.engine.route_baseline_frames = 0
    engine.update_config(changed)
    assert engine._baseline.frames == 0 and not engine._baseline.history
    engine.cfg.engine.route_baseline_frames = 7  # a caller changing the engine's own config in place
    engine.update_config(engine.cfg)
    assert engine._baseline.frames == 7


def test_a_frame_makes_each_maps_search_layout_once():
    from dejavu_ros.config import DejavuConfig
    from dejavu_ros.matching.dense_matching import cell_layout
    from dejavu_ros.relocalization.frame import describe

    cfg = DejavuConfig()
    frame = describe(read_rgb(sorted(shared("tum_fr3_sequence").glob("*.png"))[0]), trained_extractor(), cfg)
    first = frame.search_layout(frame.dense, cfg.matching)
    assert frame.search_layout(frame.dense, cfg.matching) is first  # every verified keyframe reuses it
    assert torch.equal(first, cell_layout(frame.dense, cfg.matching.dense_stride))
    half = frame.pyramid(trained_extractor(), [0.5])[0]
    assert frame.search_layout(half, cfg.matching).shape[0] < first.shape[0]  # one per map
