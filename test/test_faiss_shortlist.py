"""The FAISS shortlist of large maps: built once, stored in the map, reused, close to the exact one."""
from __future__ import annotations

import numpy as np
import pytest

from dejavu_ros.map import KeyframeMap
from dejavu_ros.map.synthetic import random_keyframe
from dejavu_ros.similarity.faiss_index import ShortlistIndex, shortlist_rows

faiss = pytest.importorskip("faiss")


def clustered(n, dim=160, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, dim))
    x = centres[rng.integers(40, size=n)] + 0.4 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), rng


def test_the_index_finds_the_exact_shortlist_and_merges_what_was_added_after_it():
    db, rng = clustered(6000)
    index = ShortlistIndex.build(db[:5000])
    assert not index.stale(5400) and index.stale(5600)
    hits = []
    for q in rng.integers(6000, size=50):
        query = db[q] + 0.05 * rng.standard_normal(160).astype(np.float32)
        query /= np.linalg.norm(query)
        exact = set(np.argsort(-(db @ query))[:20])
        scores, rows = shortlist_rows(index, db, query, 20, nprobe=32)
        assert np.all(np.diff(scores) <= 1e-6)  # best first, exact cosines
        hits.append(len(exact & set(rows)) / 20)
        if q >= 5000:  # added after the build: found by the exact tail search
            assert q in rows
    assert np.mean(hits) > 0.9
    again = ShortlistIndex.from_bytes(index.to_bytes(), index.covers)
    np.testing.assert_array_equal(shortlist_rows(again, db, db[7], 20)[1], shortlist_rows(index, db, db[7], 20)[1])


def test_a_large_map_stores_its_index_and_a_reader_reuses_it(tmp_path):
    from dejavu_ros.config import DejavuConfig
    from dejavu_ros.features.extractor import FeatureExtractor
    from dejavu_ros.relocalization.engine import RelocalizationEngine

    db, rng = clustered(3000)
    path = tmp_path / "big.db"
    with KeyframeMap.create(path, "ab" * 8, 10) as kmap:
        keyframes = []
        for i in range(3000):
            kf = random_keyframe(rng, grid_hw=(2, 2), num_keypoints=8, with_optional=False, image_size=(64, 48))
            kf.global_desc, kf.position = db[i], np.array([float(i), 0.0, 0.0])
            keyframes.append(kf)
        kmap.append_many(keyframes)
    cfg = DejavuConfig()
    cfg.engine.faiss_min_keyframes, cfg.engine.sequence_length = 1000, 0
    extractor = FeatureExtractor.random(seed=0)
    with KeyframeMap.open(path, mode="rw", allow_model_mismatch=True) as kmap:
        engine = RelocalizationEngine(cfg, extractor, kmap)
        assert engine._index is not None and kmap.load_search_index()[0] == 3000
    with KeyframeMap.open(path, mode="r", allow_model_mismatch=True) as kmap:
        engine = RelocalizationEngine(cfg, extractor, kmap)
        assert engine._index.covers == 3000  # read back, not rebuilt
        result = engine.relocalize(np.full((96, 128, 3), 100, np.uint8), 0.0)
        assert len(result.candidates) == cfg.engine.publish_top_k
