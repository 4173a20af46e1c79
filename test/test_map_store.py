"""The SQLite keyframe map: round trip, validation, refusals, transactions, crashes, concurrency."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import warnings

import cv2
import numpy as np
import pytest

from dejavu_ros.errors import DejavuError
from dejavu_ros.map import (InvalidKeyframeError, KeyframeMap, KeyframeNotFoundError, MapError,
                            MapMismatchError, MapMismatchWarning, SCHEMA_VERSION)
from dejavu_ros.map.synthetic import random_keyframe

from conftest import REPO

FP = "0123456789abcdef" * 4
OTHER_FP = "fedcba9876543210" * 4


def small_kf(rng, **kw):
    kw.setdefault("num_keypoints", 40)
    kw.setdefault("grid_hw", (6, 8))
    return random_keyframe(rng, image_size=(160, 120), **kw)


@pytest.fixture
def rng():
    return np.random.default_rng(7)


@pytest.fixture
def filled_map(tmp_path, rng):
    """A closed map with 12 keyframes; returns its path."""
    path = tmp_path / "filled.db"
    with KeyframeMap.create(path, FP, 10, engine_config={"grid_stride": 4}) as m:
        m.append_many([small_kf(rng) for _ in range(12)])
    return path


def _bits(a):
    return np.ascontiguousarray(a).view(np.uint8)


def test_round_trip_every_field(tmp_path, rng):
    kf = small_kf(rng)
    kf.source = "robotcar/2014-12-09/rear"
    kf.extra = {"condition": "night", "seq": 3}
    kf.stamp = 1418132418.123456
    bare = small_kf(rng, with_optional=False)
    with KeyframeMap.create(tmp_path / "m.db", FP, 10, frame_id="map", engine_config={"a": 1}) as m:
        kf_id, bare_id = m.append(kf), m.append(bare)
    with KeyframeMap.open(tmp_path / "m.db", expected_fingerprint=FP, expected_descriptor_dim=10) as m:
        assert m.engine_config == {"a": 1} and m.frame_id == "map" and m.global_descriptor_dim == 160
        got, got_bare = m.get(kf_id), m.get(bare_id)
    assert got.id == kf_id and got.stamp == kf.stamp and got.source == kf.source
    assert got.extra == kf.extra and got.frame_id == "map" and got.image_size == (160, 120)
    np.testing.assert_array_equal(got.position, kf.position)
    np.testing.assert_allclose(got.orientation, kf.orientation, rtol=0, atol=1e-15)
    for name, dtype in [("covariance", np.float64), ("camera_k", np.float64), ("global_desc", np.float32),
                        ("grid", np.float16), ("keypoints", np.float32), ("descriptors", np.float16),
                        ("points3d", np.float32)]:
        stored = getattr(got, name)
        assert stored.dtype == dtype, name
        assert np.array_equal(_bits(stored), _bits(np.asarray(getattr(kf, name), dtype=dtype))), name
    assert np.isnan(got.points3d).any()  # NaN (unknown depth) survives
    assert got.thumbnail == kf.thumbnail and got.thumbnail[:2] == b"\xff\xd8"
    assert got_bare.covariance is None and got_bare.points3d is None and got_bare.camera_k is None


def test_fp32_grid_is_stored_as_its_fp16_rounding(tmp_path, rng):
    kf = small_kf(rng)
    kf.grid = rng.standard_normal((10, 6, 8)).astype(np.float32)
    with KeyframeMap.create(tmp_path / "m.db", FP, 10) as m:
        stored = m.get(m.append(kf)).grid
        stacked = m.load_grids([1], dtype=np.float32)
    assert stored.dtype == np.float16
    assert np.array_equal(_bits(stored), _bits(kf.grid.astype(np.float16)))
    assert np.array_equal(stacked[0], kf.grid.astype(np.float16).astype(np.float32))


def test_bulk_loaders_iteration_and_ids(filled_map, rng):
    with KeyframeMap.open(filled_map) as m:
        frames = list(m)
        ids, descs = m.load_global_descriptors()
        pids, positions, orientations = m.load_poses()
        grids = m.load_grids([5, 2, 9])
        assert len(m) == 12 and m.ids() == list(range(1, 13)) and 5 in m and 99 not in m
        with pytest.raises(KeyframeNotFoundError, match="99"):
            m.load_grids([1, 99])
        with pytest.raises(KeyframeNotFoundError, match="99"):
            m.get(99)
        assert m.load_thumbnail(3) == frames[2].thumbnail
    assert [f.id for f in frames] == list(range(1, 13))
    assert ids.dtype == np.int64 and list(ids) == list(pids) == list(range(1, 13))
    assert descs.shape == (12, 160) and descs.dtype == np.float32
    np.testing.assert_array_equal(descs[4], frames[4].global_desc)
    np.testing.assert_array_equal(positions[7], frames[7].position)
    np.testing.assert_array_equal(orientations[7], frames[7].orientation)
    assert grids.shape == (3, 10, 6, 8) and grids.dtype == np.float16
    np.testing.assert_array_equal(grids[0], frames[4].grid)
    np.testing.assert_array_equal(grids[1], frames[1].grid)


def test_traversals_follow_the_ids_asked_for(tmp_path, rng):
    """The engine reads descriptors, then traversals: a keyframe committed in between by another
    process must not shift one against the other."""
    path = tmp_path / "drives.db"
    with KeyframeMap.create(path, FP, 10, engine_config={"grid_stride": 4}) as m:
        frames = [small_kf(rng) for _ in range(3)] + [small_kf(rng, source="bag_b")]
        for kf, drive in zip(frames, (0, 0, 1)):
            kf.extra = {"traversal": drive}
        m.append_many(frames)
        assert m.load_traversals([3, 1, 4]) == ["traversal 1", "traversal 0", "source bag_b"]
        with pytest.raises(KeyframeNotFoundError, match="9"):
            m.load_traversals([1, 9])


def test_empty_map_loaders(tmp_path):
    with KeyframeMap.create(tmp_path / "m.db", FP, 10) as m:
        assert len(m) == 0 and m.ids() == [] and list(m) == []
        ids, descs = m.load_global_descriptors()
        assert ids.shape == (0,) and descs.shape[0] == 0
        assert m.load_poses()[1].shape == (0, 3) and m.load_grids([]).shape[0] == 0
        info = m.info()
        assert info["keyframes"] == 0 and info["bbox"] is None and info["integrity"] == "ok"


def test_grids_of_different_shapes_refuse_to_stack(tmp_path, rng):
    with KeyframeMap.create(tmp_path / "m.db", FP, 10) as m:
        m.append(small_kf(rng, grid_hw=(6, 8)))
        m.append(small_kf(rng, grid_hw=(8, 6)))
        assert m.load_grids([1]).shape == (1, 10, 6, 8)
        with pytest.raises(MapError, match="cannot be stacked"):
            m.load_grids([1, 2])


@pytest.mark.parametrize("field,value,match", [
    ("position", np.array([0.0, np.nan, 1.0]), "position"),
    ("position", np.array([0.0, 1.0]), "position"),
    ("orientation", np.array([0.0, 0.0, np.inf, 1.0]), "orientation"),
    ("orientation", np.array([0.0, 0.0, 0.1, 1.0]), "orientation"),
    ("covariance", np.full((6, 6), np.nan), "covariance"),
    ("stamp", float("nan"), "stamp"),
    ("descriptors", np.zeros((40, 8), np.float16), "descriptors.*8.*10"),
    ("grid", np.zeros((8, 6, 8), np.float16), "grid.*8.*10"),
    ("keypoints", np.zeros((39, 2), np.float32), "descriptors"),
    ("global_desc", np.zeros(32, np.float32), "global_desc.*32.*160"),
    ("frame_id", "odom", "frame_id"),
    ("thumbnail", b"\x89PNG....", "thumbnail"),
    ("image_size", (0, 120), "image_size"),
])
def test_invalid_keyframe_is_refused_naming_the_field(tmp_path, rng, field, value, match):
    with KeyframeMap.create(tmp_path / "m.db", FP, 10) as m:
        m.append(small_kf(rng))  # fixes the global descriptor size at 160
        bad = small_kf(rng)
        setattr(bad, field, value)
        with pytest.raises(InvalidKeyframeError, match=match):
            m.append(bad)
        assert len(m) == 1


def test_slightly_off_quaternion_is_normalised(tmp_path, rng):
    kf = small_kf(rng)
    q = np.array([0.1, 0.2, 0.3, 0.9])
    kf.orientation = q / np.linalg.norm(q) * (1 + 5e-4)
    with KeyframeMap.create(tmp_path / "m.db", FP, 10) as m:
        stored = m.get(m.append(kf)).orientation
    assert abs(np.linalg.norm(stored) - 1) < 1e-12
    np.testing.assert_allclose(stored, q / np.linalg.norm(q), atol=1e-12)


def test_append_many_is_all_or_nothing(tmp_path, rng):
    frames = [small_kf(rng) for _ in range(5)]
    frames[3].position = np.array([1.0, np.inf, 0.0])
    with KeyframeMap.create(tmp_path / "m.db", FP, 10) as m:
        with pytest.raises(InvalidKeyframeError, match="position"):
            m.append_many(frames)
        assert len(m) == 0
        frames[3].position = np.zeros(3)
        assert m.append_many(frames) == [1, 2, 3, 4, 5]


def test_quotes_and_sql_in_strings_round_trip(tmp_path, rng):
    nasty = "Robert'); DROP TABLE keyframes;-- \"night\" %s ? :x \\ ünïcode"
    frame = "map'; DELETE FROM meta;--"
    with KeyframeMap.create(tmp_path / "m.db", FP, 10, frame_id=frame,
                            engine_config={"note": nasty}) as m:
        kf = small_kf(rng, source=nasty)
        kf.frame_id = frame
        kf.extra = {nasty: nasty}
        kf_id = m.append(kf)
    with KeyframeMap.open(tmp_path / "m.db") as m:
        got = m.get(kf_id)
        assert got.source == nasty and got.frame_id == frame and got.extra == {nasty: nasty}
        assert m.frame_id == frame and m.engine_config == {"note": nasty} and len(m) == 1


def test_model_fingerprint_mismatch_names_both_and_can_be_overridden(filled_map):
    with pytest.raises(MapMismatchError) as err:
        KeyframeMap.open(filled_map, expected_fingerprint=OTHER_FP)
    assert FP in str(err.value) and OTHER_FP in str(err.value) and str(filled_map) in str(err.value)
    with pytest.warns(MapMismatchWarning, match=OTHER_FP):
        with KeyframeMap.open(filled_map, expected_fingerprint=OTHER_FP, allow_model_mismatch=True) as m:
            assert len(m) == 12
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        KeyframeMap.open(filled_map, expected_fingerprint=FP.upper()).close()  # hex case is not a mismatch


def test_descriptor_dim_mismatch(filled_map):
    with pytest.raises(MapMismatchError, match="10-dimensional.*16-dimensional"):
        KeyframeMap.open(filled_map, expected_descriptor_dim=16, allow_model_mismatch=True)


def test_newer_schema_is_refused(filled_map):
    conn = sqlite3.connect(filled_map)
    with conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    conn.close()
    with pytest.raises(MapMismatchError, match=f"version {SCHEMA_VERSION + 1}.*version {SCHEMA_VERSION}"):
        KeyframeMap.open(filled_map)


def test_truncated_map_is_refused(filled_map, tmp_path):
    cut = tmp_path / "cut.db"
    shutil.copy(filled_map, cut)
    with open(cut, "r+b") as fh:
        fh.truncate(cut.stat().st_size // 2)
    for mode in ("r", "rw"):
        with pytest.raises(MapError, match="truncated") as err:
            KeyframeMap.open(cut, mode=mode)
        assert str(cut) in str(err.value)


def test_files_that_are_not_maps_are_refused(tmp_path):
    cases = {
        "text.db": (b"keyframes: 12\nthis is not a map\n", "not an SQLite database"),
        "image.db": (cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes(), "not an SQLite"),
        "empty.db": (b"", "empty"),
    }
    for name, (content, match) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(MapError, match=match) as err:
            KeyframeMap.open(tmp_path / name)
        assert name in str(err.value)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE things (x INTEGER)")
    conn.close()
    with pytest.raises(MapError, match="not a keyframe map") as err:
        KeyframeMap.open(other)
    assert "other.db" in str(err.value)
    with pytest.raises(MapError, match="not found"):
        KeyframeMap.open(tmp_path / "missing.db")
    assert issubclass(MapError, DejavuError)


def test_read_only_mode_refuses_writes(filled_map, rng):
    before = hashlib.sha256(filled_map.read_bytes()).hexdigest()
    with KeyframeMap.open(filled_map, mode="r") as m:
        assert m.read_only
        with pytest.raises(MapError, match="read-only"):
            m.append(small_kf(rng))
        with pytest.raises(sqlite3.OperationalError, match="readonly"):  # SQLite itself refuses too
            m._conn.execute("DELETE FROM keyframes")
        assert len(m) == 12
    assert hashlib.sha256(filled_map.read_bytes()).hexdigest() == before


def test_create_refuses_existing_file_and_bad_arguments(filled_map, tmp_path):
    with pytest.raises(MapError, match="exists"):
        KeyframeMap.create(filled_map, FP, 10)
    with KeyframeMap.create(filled_map, FP, 10, overwrite=True) as m:
        assert len(m) == 0
    with pytest.raises(MapError, match="hex"):
        KeyframeMap.create(tmp_path / "x.db", "not hex!", 10)
    with pytest.raises(MapError, match="descriptor_dim"):
        KeyframeMap.create(tmp_path / "x.db", FP, 0)
    assert not (tmp_path / "x.db").exists()


def test_damaged_array_blob_is_reported_with_its_keyframe(filled_map):
    with sqlite3.connect(filled_map) as conn:
        conn.execute("UPDATE keyframe_data SET grid = substr(grid, 1, 40) WHERE id = ?", (4,))
    conn.close()
    with KeyframeMap.open(filled_map) as m:
        m.get(3)
        with pytest.raises(MapError, match="keyframe 4 grid.*damaged"):
            m.get(4)
        with pytest.raises(MapError, match="keyframe 4 grid.*damaged"):
            m.load_grids([2, 4])


def test_closed_map_and_info(filled_map):
    m = KeyframeMap.open(filled_map)
    info = m.info()
    m.close()
    with pytest.raises(MapError, match="closed"):
        len(m)
    assert info["keyframes"] == 12 and info["integrity"] == "ok" and info["model_fingerprint"] == FP
    assert info["schema_version"] == SCHEMA_VERSION and info["descriptor_dim"] == 10
    assert info["file_size_bytes"] == filled_map.stat().st_size
    assert info["bytes_per_keyframe"] == pytest.approx(info["file_size_bytes"] / 12, abs=0.1)
    assert all(lo <= hi for lo, hi in zip(info["bbox"]["min"], info["bbox"]["max"]))
    json.dumps(info)


# --- crashes and concurrency (real processes) ------------------------------------------------

def _child(script: str, *args: str, **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


APPENDER = """
    import sys
    import numpy as np
    from dejavu_ros.map import KeyframeMap
    from dejavu_ros.map.synthetic import random_keyframe
    batch = int(sys.argv[2])
    rng = np.random.default_rng(batch)
    frames = [random_keyframe(rng, num_keypoints=300, grid_hw=(12, 16)) for _ in range(20)]
    with KeyframeMap.open(sys.argv[1], mode="rw") as m:
        i = 0
        while True:
            if batch == 1:
                ids = [m.append(frames[i % 20])]
            else:
                ids = m.append_many(frames[(i + k) % 20] for k in range(batch))
            print(*ids, sep="\\n", flush=True)
            i += batch
"""


@pytest.mark.slow
def test_sigkill_mid_append_loses_nothing_committed(tmp_path):
    """Kill a child that appends in a loop, four times on the same map, at varying moments."""
    path = tmp_path / "crash.db"
    KeyframeMap.create(path, FP, 10).close()
    printed: list[int] = []
    for batch, kill_after in [(1, 5), (4, 9), (1, 17), (5, 12)]:
        child = _child(APPENDER, str(path), str(batch))
        seen = 0
        for line in child.stdout:
            printed.append(int(line))
            seen += 1
            if seen >= kill_after:
                break
        child.send_signal(signal.SIGKILL)
        rest, err = child.communicate(timeout=30)
        assert child.returncode == -signal.SIGKILL, err
        printed += [int(x) for x in rest.split()]
        with KeyframeMap.open(path, mode="r") as m:  # rolls back a hot journal if the kill hit a commit
            assert m.integrity_check() == "ok"
            ids = m.ids()
            assert set(printed) <= set(ids)
            assert len(ids) <= len(printed) + batch  # at most one committed but unprinted transaction
            assert ids == list(range(1, len(ids) + 1))  # a rolled-back append leaves no hole
            for kf in m:
                assert kf.grid.shape == (10, 12, 16) and kf.descriptors.shape == (300, 10)
        printed = ids  # committed-but-unprinted rows are legitimately part of the map


def test_interrupted_write_is_rolled_back_by_a_read_only_opener(filled_map):
    """A writer killed after spilling changes into the file leaves a hot journal behind."""
    with KeyframeMap.open(filled_map) as m:
        thumbs = [kf.thumbnail for kf in m]
    child = _child("""
        import sqlite3, sys, time
        conn = sqlite3.connect(sys.argv[1], isolation_level=None)
        conn.execute("PRAGMA cache_size=2")
        conn.execute("BEGIN")
        conn.execute("UPDATE keyframe_data SET thumbnail = randomblob(60000)")
        conn.execute("DELETE FROM meta")
        print("dirty", flush=True)
        time.sleep(60)
    """, str(filled_map))
    assert child.stdout.readline().strip() == "dirty"
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=30)
    assert (filled_map.parent / (filled_map.name + "-journal")).stat().st_size > 0
    with KeyframeMap.open(filled_map, mode="r") as m:
        assert m.integrity_check() == "ok"
        assert [kf.thumbnail for kf in m] == thumbs


READER = """
    import json, sys, time
    from dejavu_ros.map import KeyframeMap
    seen, deadline = [], time.time() + 20
    with KeyframeMap.open(sys.argv[1], mode="r") as m:
        while time.time() < deadline:
            ids, descs = m.load_global_descriptors()
            pids, pos, _ = m.load_poses()
            assert descs.shape == (len(ids), 160) and len(pids) >= len(ids), (descs.shape, len(pids))
            if len(ids):
                m.load_grids(ids[-3:])
                assert m.get(int(ids[-1])).descriptors.shape == (300, 10)
            seen.append(len(ids))
            if len(ids) >= int(sys.argv[2]):
                break
        print(json.dumps({"seen": seen, "integrity": m.integrity_check()}), flush=True)
"""


@pytest.mark.slow
def test_reader_process_while_writer_appends(tmp_path, rng):
    path = tmp_path / "busy.db"
    total = 40
    frames = [random_keyframe(rng, num_keypoints=300, grid_hw=(12, 16)) for _ in range(10)]
    with KeyframeMap.create(path, FP, 10) as writer:
        writer.append(frames[0])
        reader = _child(READER, str(path), str(total))
        for i in range(1, total):
            writer.append(frames[i % 10])
            time.sleep(0.01)
        out, err = reader.communicate(timeout=60)
        assert reader.returncode == 0, err
        report = json.loads(out)
        assert writer.integrity_check() == "ok" and len(writer) == total
    assert report["integrity"] == "ok"
    assert report["seen"] == sorted(report["seen"]) and report["seen"][-1] == total


def test_one_map_shared_by_threads(tmp_path, rng):
    """The node calls the map from several callbacks: one object, many threads."""
    import threading

    frames = [small_kf(rng) for _ in range(8)]
    errors: list[BaseException] = []
    with KeyframeMap.create(tmp_path / "m.db", FP, 10) as m:
        def write():
            try:
                for kf in frames:
                    m.append(kf)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        def read():
            try:
                for _ in range(30):
                    ids, descs = m.load_global_descriptors()
                    assert len(ids) == len(descs)
                    if len(ids):
                        m.get(int(ids[-1]))
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=f) for f in (write, write, read, read)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        assert len(m) == 16 and m.integrity_check() == "ok"


def test_sift_features_round_trip_in_their_own_table(tmp_path, rng):
    with_sift = small_kf(rng)
    with_sift.sift_keypoints = rng.uniform(0, 150, (30, 2)).astype(np.float32)
    with_sift.sift_descriptors = rng.integers(0, 256, (30, 128)).astype(np.uint8)
    plain = small_kf(rng)
    path = tmp_path / "sift.db"
    with KeyframeMap.create(path, FP, 10) as m:
        plain_id = m.append(plain)  # a map starts without the SIFT table...
        assert not m._has_table("keyframe_sift")
        sift_id = m.append(with_sift)  # ...and gets it with the first keyframe that has SIFT features
    with KeyframeMap.open(path) as m:
        back = m.get(sift_id)
        np.testing.assert_array_equal(back.sift_keypoints, with_sift.sift_keypoints)
        np.testing.assert_array_equal(back.sift_descriptors, with_sift.sift_descriptors)
        assert back.sift_descriptors.dtype == np.uint8
        assert m.get(plain_id).sift_keypoints is None
    bad = small_kf(rng)
    bad.sift_keypoints = np.zeros((3, 2), np.float32)
    with KeyframeMap.open(path, mode="rw") as m, pytest.raises(InvalidKeyframeError, match="sift_keypoints"):
        m.append(bad)  # descriptors missing


@pytest.mark.parametrize("with_points", [True, False])
def test_head_keypoints_round_trip_in_their_own_table_and_iteration_reads_them(tmp_path, rng, with_points):
    kf = small_kf(rng)
    kf.head_keypoints = rng.uniform(0, 150, (25, 2)).astype(np.float32)
    kf.head_descriptors = rng.standard_normal((25, 10)).astype(np.float16)
    kf.head_points3d = rng.uniform(1, 5, (25, 3)).astype(np.float32) if with_points else None
    path = tmp_path / "head.db"
    with KeyframeMap.create(path, FP, 10) as m:
        plain_id = m.append(small_kf(rng))
        assert not m._has_table("keyframe_head")
        head_id = m.append(kf)
    with KeyframeMap.open(path) as m:
        back = m.get(head_id)
        np.testing.assert_array_equal(back.head_keypoints, kf.head_keypoints)
        np.testing.assert_array_equal(back.head_descriptors, kf.head_descriptors)
        assert (back.head_points3d is None) == (not with_points)
        if with_points:
            np.testing.assert_array_equal(back.head_points3d, kf.head_points3d)
        assert m.get(plain_id).head_keypoints is None
        by_id = {k.id: k for k in m}  # a map copied by iteration keeps the optional sets
        np.testing.assert_array_equal(by_id[head_id].head_keypoints, kf.head_keypoints)
    for field, value, words in (("head_descriptors", np.zeros((25, 9), np.float16), "descriptor_dim is 10"),
                                ("head_descriptors", np.zeros((24, 10), np.float16), "24 rows for 25 keypoints"),
                                ("head_descriptors", None, "come together"),
                                ("head_points3d", np.full((25, 3), np.inf, np.float32), "contains Inf")):
        bad = small_kf(rng)
        bad.head_keypoints, bad.head_descriptors = kf.head_keypoints, kf.head_descriptors
        setattr(bad, field, value)
        with KeyframeMap.open(path, mode="rw") as m, pytest.raises(InvalidKeyframeError, match=words):
            m.append(bad)
    with KeyframeMap.open(path) as m:
        assert len(m) == 2  # nothing of the refused keyframes was written
