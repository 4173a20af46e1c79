"""Both matching directions end to end on a warped synthetic scene, then RANSAC; empty inputs."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from matching_support import patch_dense, texture

from dejavu_ros.matching import (MatchingConfig, corner_features, detect_corners, match_to_keyframe, verify)

H = np.array([[1.04, -0.08, 6.0], [0.07, 1.03, -5.0], [1e-5, -2e-5, 1.0]])  # ~4° rotation, 4 % zoom


def warp(points: np.ndarray) -> np.ndarray:
    return cv2.perspectiveTransform(points.reshape(-1, 1, 2).astype(np.float64), H).reshape(-1, 2)


#: These synthetic maps are not DVF maps: the keypoint head (trained on DVF) does not apply to them.
SHI_TOMASI = MatchingConfig(keypoints="shi_tomasi")


@pytest.fixture(scope="module")
def pair():
    keyframe = texture(blur=1.0, seed=4)
    query = cv2.warpPerspective(keyframe, H, (keyframe.shape[1], keyframe.shape[0]), flags=cv2.INTER_LINEAR)
    dense_k = patch_dense(keyframe, radius=5, blur=0.5, smooth=1.0)
    dense_q = patch_dense(query, radius=5, blur=0.5, smooth=1.0)
    kxy, kdesc = corner_features(keyframe, dense_k, SHI_TOMASI)
    return keyframe, query, dense_q, kxy, kdesc


@pytest.mark.parametrize("direction", ["corners", "dense"])
def test_both_directions_match_a_warped_copy(pair, direction):
    _, query, dense_q, kxy, kdesc = pair
    cfg = MatchingConfig(direction=direction, dense_coarse="exact", keypoints="shi_tomasi")
    m = match_to_keyframe(dense_q, kxy, kdesc, cfg, query_xy=detect_corners(query, cfg))
    err = np.linalg.norm(m.query_xy - warp(m.map_xy), axis=1)
    assert len(m) > 80
    assert np.mean(err < 1.5) > 0.9
    assert m.counts["stability"] == len(m)
    gv = verify(m, cfg)  # no intrinsics: fundamental matrix
    assert gv.accepted and gv.model == "fundamental", gv.reason
    correct = err < 1.5
    assert (gv.inlier_mask & correct).sum() > 0.9 * correct.sum()


def test_featureless_query_or_keyframe_gives_an_empty_rejected_verification(pair):
    _, query, dense_q, kxy, kdesc = pair
    flat = np.full((128, 160), 90, np.uint8)
    flat_dense = patch_dense(flat, radius=5)
    kxy, kdesc = kxy[:40], kdesc[:40]
    for direction in ("corners", "dense"):
        cfg = MatchingConfig(direction=direction, keypoints="shi_tomasi")
        none_in_query = match_to_keyframe(flat_dense, kxy, kdesc, cfg, query_xy=detect_corners(flat, cfg))
        fxy, fdesc = corner_features(flat, flat_dense, SHI_TOMASI)
        none_in_keyframe = match_to_keyframe(dense_q, fxy, fdesc, cfg, query_xy=detect_corners(query, cfg))
        assert len(fxy) == 0 and len(none_in_keyframe) == 0
        for m in (none_in_query, none_in_keyframe):
            for k in (None, np.diag([400.0, 400.0, 1.0])):
                gv = verify(m, cfg, k, k)
                assert not gv.accepted and gv.num_inliers == 0 and gv.to_verification(1).num_inliers == 0
    assert len(match_to_keyframe(dense_q, kxy, kdesc, MatchingConfig(direction="corners"),
                                 query_xy=np.zeros((0, 2)))) == 0


def test_untrained_dvf_maps_flow_through_both_directions():
    from dejavu_ros.features.extractor import FeatureExtractor

    extractor = FeatureExtractor.random(seed=0)
    rgb = cv2.cvtColor(texture(128, 160, seed=2), cv2.COLOR_GRAY2RGB)
    dense = extractor.extract(rgb)
    assert dense.shape == (extractor.descriptor_dim, 128, 160) and dense.dtype == torch.float32
    kxy, kdesc = corner_features(rgb, dense)
    assert kdesc.shape == (len(kxy), extractor.descriptor_dim) and len(kxy) > 20
    # The same image as query: corner-to-corner must pair every corner with itself.
    cfg = MatchingConfig(direction="corners", ratio=1.0, stability=False)
    m = match_to_keyframe(dense, kxy, kdesc, cfg, query_xy=kxy)
    assert m.counts["mutual"] == len(kxy) and np.array_equal(m.query_idx, m.map_idx)
    dense_m = match_to_keyframe(dense, kxy, kdesc, MatchingConfig(direction="dense"))
    assert dense_m.query_xy.shape == (len(dense_m), 2) and np.all(dense_m.map_idx < len(kxy))
