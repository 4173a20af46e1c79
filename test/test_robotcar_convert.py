"""convert-robotcar on a synthetic run folder with the real on-disk layout.

The run has Bayer PNGs mosaiced from known RGB images, a timestamps file whose chunk 2 was not
"downloaded", an ins.csv with a known straight trajectory (plus malformed rows), a vo.csv, a
tags file, and uses the SDK's real camera models and extrinsics from ../shared/data.
"""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from conftest import shared
from dejavu_ros.cli.main import main as cli_main
from dejavu_ros.io.bag_reader import BagReader
from dejavu_ros.io.camera_info import camera_info_to_intrinsics
from dejavu_ros.datasets.robotcar.errors import RobotCarFormatError
from dejavu_ros.io.errors import BagError
from dejavu_ros.io.images import image_to_rgb
from dejavu_ros.datasets.robotcar.convert import convert
from dejavu_ros.datasets.robotcar.geometry import se3_from_xyzrpy
from dejavu_ros.datasets.robotcar.plan import ConvertOptions, prepare

RUN = "2014-12-10-18-10-50"
T0 = 1418235000000000  # µs
FRAME_US = 62_500  # 16 Hz
INS_US = 20_000  # 50 Hz
H, W = 48, 64
CHUNKS = [1] * 5 + [2] * 4 + [3] * 3  # chunk 2 missing on disk
SPEED, HEADING = 10.0, math.radians(30)  # m/s, NED yaw (clockwise from north)
N0, E0, D0 = 5_735_000.0, 620_000.0, -110.0
CHANNEL = {"r": 0, "g": 1, "b": 2}


def known_rgb(i: int) -> np.ndarray:
    y, x = np.mgrid[0:H, 0:W]
    return np.stack([x * 3 + 10 + i, y * 4 + 5, 200 - x - y + 2 * i], axis=-1).astype(np.uint8)


def mosaic(rgb: np.ndarray, pattern: str) -> np.ndarray:
    out = np.zeros(rgb.shape[:2], np.uint8)
    for (dy, dx), letter in zip([(0, 0), (0, 1), (1, 0), (1, 1)], pattern):
        out[dy::2, dx::2] = rgb[dy::2, dx::2, CHANNEL[letter]]
    return out


def ins_position(t_us: int) -> tuple[float, float, float]:
    dt = (t_us - T0) * 1e-6
    return N0 + SPEED * math.cos(HEADING) * dt, E0 + SPEED * math.sin(HEADING) * dt, D0


def make_run(root: Path, camera: str = "stereo/centre", ins_extra: list[str] | None = None) -> Path:
    run = root / RUN
    image_dir = run / camera
    image_dir.mkdir(parents=True)
    pattern = "gbrg" if camera.startswith("stereo") else "rggb"
    stamps = [T0 + i * FRAME_US for i in range(len(CHUNKS))]
    ts_file = run / ("stereo.timestamps" if camera.startswith("stereo") else f"{camera}.timestamps")
    ts_file.write_text("".join(f"{s} {c}\n" for s, c in zip(stamps, CHUNKS)))
    for i, (s, c) in enumerate(zip(stamps, CHUNKS)):
        if c != 2:
            cv2.imwrite(str(image_dir / f"{s}.png"), mosaic(known_rgb(i), pattern))
    (run / "gps").mkdir()
    lines = ["timestamp,ins_status,latitude,longitude,altitude,northing,easting,down,utm_zone,"
             "velocity_north,velocity_east,velocity_down,roll,pitch,yaw"]
    for k in range(-25, 60):
        t = T0 + k * INS_US
        n, e, d = ins_position(t)
        lines.append(f"{t},INS_SOLUTION_GOOD,51.76,-1.26,110.0,{n:.4f},{e:.4f},{d},30U,"
                     f"{SPEED * math.cos(HEADING)},{SPEED * math.sin(HEADING)},0.0,0.0,0.0,{HEADING}")
        if k == 10:  # lines 38 and 39 (line 2 is k = -25)
            lines.append(f"{t + 1},INS_SOLUTION_GOOD,51.76,-1.26")  # too few columns
            lines.append(f"{t + 2},INS_SOLUTION_GOOD,x,-1.26,110,1,2,3,30U,0,0,0,0,0,0")  # not a number
    lines += ins_extra or []
    (run / "gps" / "ins.csv").write_text("\n".join(lines) + "\n")
    (run / "vo").mkdir()
    vo = ["source_timestamp,destination_timestamp,x,y,z,roll,pitch,yaw"]
    vo += [f"{T0 + k * FRAME_US},{T0 + (k + 1) * FRAME_US},0.625,0.0,0.0,0.0,0.0,0.02" for k in range(10)]
    (run / "vo" / "vo.csv").write_text("\n".join(vo) + "\n")
    (run / "tags").mkdir()
    (run / "tags" / f"{RUN}.yaml").write_text("- night\n- rain\n")
    return run


def options(run: Path, out: Path, **kw) -> ConvertOptions:
    models = shared("robotcar_format", "models")
    kw.setdefault("extrinsics_dir", shared("robotcar_format", "extrinsics"))
    return ConvertOptions(run_dir=run, camera=kw.pop("camera", "stereo/centre"), models_dir=models, out=out,
                          progress=False, **kw)


def read_topics(bag: Path) -> dict[str, list]:
    out: dict[str, list] = {}
    with BagReader(bag) as reader:
        for m in reader.messages():
            out.setdefault(m.topic, []).append(m)
    return out


def matrix(pose) -> np.ndarray:
    q, p = pose.orientation, pose.position
    out = np.eye(4)
    out[:3, :3] = Rotation.from_quat([q.x, q.y, q.z, q.w]).as_matrix()
    out[:3, 3] = [p.x, p.y, p.z]
    return out


def transform_matrix(tf) -> np.ndarray:
    q, t = tf.rotation, tf.translation
    out = np.eye(4)
    out[:3, :3] = Rotation.from_quat([q.x, q.y, q.z, q.w]).as_matrix()
    out[:3, 3] = [t.x, t.y, t.z]
    return out


@pytest.fixture
def stereo_bag(tmp_path):
    run = make_run(tmp_path / "runs")
    summary = convert(prepare(options(run, tmp_path / "out.mcap")))
    return tmp_path / "out", summary, read_topics(tmp_path / "out")


def test_frames_counts_stamps_and_demosaicing(stereo_bag):
    bag, summary, topics = stereo_bag
    images = topics["/robotcar/stereo_centre/image_color"]
    present = [i for i, c in enumerate(CHUNKS) if c != 2]
    assert summary.frames_selected == 12 and summary.frames_written == 8
    assert dict(summary.frames_missing) == {2: 4}
    assert [m.stamp_ns for m in images] == [(T0 + i * FRAME_US) * 1000 for i in present]
    for i, m in zip(present, images):
        assert m.msg.encoding == "rgb8" and m.msg.header.frame_id == "stereo_centre_optical"
        rgb = image_to_rgb(m.msg)
        err = np.abs(rgb.astype(int) - known_rgb(i).astype(int))[2:-2, 2:-2]
        assert err.mean() < 1.5, (i, err.mean())
    assert (bag / "out.mcap").is_file()


def test_camera_info_equals_model_file(stereo_bag):
    _, _, topics = stereo_bag
    infos = topics["/robotcar/stereo_centre/camera_info"]
    assert len(infos) == 8
    model = shared("robotcar_format", "models", "stereo_narrow_left.txt").read_text().split()
    fx, fy, cx, cy = (float(v) for v in model[:4])
    intr = camera_info_to_intrinsics(infos[0].msg)
    np.testing.assert_array_equal(intr.k, [[fx, 0, cx], [0, fy, cy], [0, 0, 1]])
    assert (intr.width, intr.height) == (W, H)
    assert infos[0].msg.distortion_model == "" and intr.distortion is None  # distorted, LUT unknown
    assert [m.stamp_ns for m in infos] == [m.stamp_ns for m in topics["/robotcar/stereo_centre/image_color"]]


def test_ins_odometry_follows_the_trajectory_in_enu(tmp_path):
    run = make_run(tmp_path / "runs")
    models = tmp_path / "sdk" / "models"  # no extrinsics folder beside it: odometry of the INS itself
    models.mkdir(parents=True)
    shutil.copy(shared("robotcar_format", "models", "stereo_narrow_left.txt"), models)
    opts = options(run, tmp_path / "bag", extrinsics_dir=None)
    opts.models_dir = models
    summary = convert(prepare(opts))
    topics = read_topics(tmp_path / "bag")
    assert "/tf_static" not in topics and "/robotcar/stereo_centre/pose" not in topics
    assert any("no extrinsics" in n for n in summary.notes)
    odom = topics["/robotcar/ins/odometry"]
    assert len(odom) == 85 == summary.ins_poses
    assert summary.problems.total == 2
    text = "\n".join(summary.problems.messages)
    assert "gps/ins.csv:38: expected 15 columns, got 4" in text and "gps/ins.csv:39: not a number" in text
    first_n, first_e, first_d = ins_position(T0 - 25 * INS_US)  # origin = first INS pose
    for m in odom:
        assert m.msg.child_frame_id == "ins" and m.msg.header.frame_id == "map"
        n, e, d = ins_position(m.stamp_ns // 1000)
        pose = matrix(m.msg.pose.pose)
        np.testing.assert_allclose(pose[:3, 3], [e - first_e, n - first_n, -(d - first_d)], atol=2e-3)
        yaw, pitch, roll = Rotation.from_matrix(pose[:3, :3]).as_euler("ZYX")
        assert math.degrees(yaw) == pytest.approx(60.0, abs=1e-6)  # 30° east of north = 60° from east
        assert abs(pitch) < 1e-9 and abs(roll) < 1e-9
        v = m.msg.twist.twist.linear  # body frame: straight ahead
        np.testing.assert_allclose([v.x, v.y, v.z], [SPEED, 0, 0], atol=1e-9)
    fix = topics["/robotcar/ins/fix"][0].msg
    assert (fix.latitude, fix.longitude, fix.status.status) == (51.76, -1.26, 0)
    with BagReader(tmp_path / "bag") as reader:
        origin = reader.custom_data["robotcar.origin_utm"].split(",")
    assert [float(v) for v in origin[:3]] == pytest.approx([first_n, first_e, first_d], abs=1e-3)
    assert origin[3] == "30U"


def test_camera_pose_is_odometry_times_static_transform(stereo_bag):
    _, summary, topics = stereo_bag
    poses = topics["/robotcar/stereo_centre/pose"]
    assert len(poses) == summary.camera_poses == 8
    tf = {t.child_frame_id: transform_matrix(t.transform) for t in topics["/tf_static"][0].msg.transforms}
    odom = {m.stamp_ns: matrix(m.msg.pose.pose) for m in topics["/robotcar/ins/odometry"]}
    for m in poses:
        stamps = sorted(odom)
        after = next(s for s in stamps if s >= m.stamp_ns)
        before = max(s for s in stamps if s <= m.stamp_ns)
        a = (m.stamp_ns - before) / max(after - before, 1)
        base = odom[before].copy()
        base[:3, 3] = (1 - a) * odom[before][:3, 3] + a * odom[after][:3, 3]  # straight line, fixed heading
        np.testing.assert_allclose(matrix(m.msg.pose), base @ tf["stereo_centre_optical"], atol=1e-6)
    # the optical axis (z) of the front camera looks along the direction of travel
    forward = matrix(poses[0].msg.pose)[:3, 2]
    np.testing.assert_allclose(forward[:2], [math.sin(HEADING), math.cos(HEADING)], atol=0.05)


def test_tf_static_and_metadata(stereo_bag):
    bag, summary, topics = stereo_bag
    assert len(topics["/tf_static"]) == 1
    first = min(m.log_time_ns for ms in topics.values() for m in ms)
    assert topics["/tf_static"][0].log_time_ns == first  # published before anything else
    children = {t.child_frame_id: t for t in topics["/tf_static"][0].msg.transforms}
    assert set(children) == {"ins", "stereo_centre_optical"}
    ins = transform_matrix(children["ins"].transform)
    np.testing.assert_allclose(ins[:3, 3], [-1.7132, -0.1181, -1.1948])  # ins.txt, FRD -> FLU
    with BagReader(bag) as reader:
        meta = reader.custom_data
    assert meta["robotcar.tags"] == "night,rain" and meta["robotcar.run"] == RUN
    assert meta["robotcar.camera"] == "stereo/centre"
    assert summary.tags == ["night", "rain"]
    assert any("condition tags: night, rain" in line for line in summary.lines())


def test_vo_is_chained(stereo_bag):
    _, summary, topics = stereo_bag
    vo = topics["/robotcar/vo/odometry"]
    assert len(vo) == 10 == summary.vo_poses
    expected = np.eye(4)
    for m in vo:
        expected = expected @ se3_from_xyzrpy([0.625, 0, 0, 0, 0, 0.02])
        got = matrix(m.msg.pose.pose)
        # FRD yaw to the right is FLU yaw to the left: y flips sign
        np.testing.assert_allclose(got[:3, 3], expected[:3, 3] * [1, -1, -1], atol=1e-9)
    last_yaw = Rotation.from_matrix(matrix(vo[-1].msg.pose.pose)[:3, :3]).as_euler("ZYX")[0]
    assert last_yaw == pytest.approx(-0.2)


def test_keep_bayer_every_and_window(tmp_path):
    run = make_run(tmp_path / "runs")
    opts = options(run, tmp_path / "bag", debayer=False, every=2, start="0.05s", end=str(T0 + 11 * FRAME_US))
    summary = convert(prepare(opts))
    images = read_topics(tmp_path / "bag")["/robotcar/stereo_centre/image_raw"]
    # window = frames 1..11, every 2nd -> 1,3,5,7,9,11; 5 and 7 are in the missing chunk
    assert summary.frames_selected == 6 and dict(summary.frames_missing) == {2: 2}
    assert [m.stamp_ns // 1000 for m in images] == [T0 + i * FRAME_US for i in (1, 3, 9, 11)]
    for i, m in zip((1, 3, 9, 11), images):
        assert m.msg.encoding == "bayer_gbrg8"
        np.testing.assert_array_equal(np.asarray(m.msg.data).reshape(H, W), mosaic(known_rgb(i), "gbrg"))


def test_identity_lut_undistortion_and_wrong_size(tmp_path):
    run = make_run(tmp_path / "runs")
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    lut = tmp_path / "identity_lut.bin"
    np.concatenate([x.ravel(), y.ravel()]).tofile(lut)
    summary = convert(prepare(options(run, tmp_path / "bag", lut=str(lut))))
    topics = read_topics(tmp_path / "bag")
    rect = topics["/robotcar/stereo_centre/image_rect_color"]
    assert summary.frames_written == 8
    err = np.abs(image_to_rgb(rect[0].msg).astype(int) - known_rgb(0).astype(int))[2:-2, 2:-2]
    assert err.mean() < 1.5
    info = topics["/robotcar/stereo_centre/camera_info"][0].msg
    assert info.distortion_model == "plumb_bob" and not np.any(info.d)
    shifted = tmp_path / "shift_lut.bin"  # sample 3 px to the right: content moves left
    np.concatenate([(x + 3).ravel(), y.ravel()]).tofile(shifted)
    convert(prepare(options(run, tmp_path / "bag2", lut=str(shifted))))
    moved = image_to_rgb(read_topics(tmp_path / "bag2")["/robotcar/stereo_centre/image_rect_color"][0].msg)
    original = image_to_rgb(rect[0].msg)
    np.testing.assert_allclose(moved[5:-5, 5:-8].astype(int), original[5:-5, 8:-5].astype(int), atol=2)
    small = tmp_path / "small_lut.bin"
    np.zeros(2 * 10 * 10).tofile(small)
    with pytest.raises(RobotCarFormatError, match=r"has 1600 bytes; images of 64x48 need .* = 49152 bytes"):
        prepare(options(run, tmp_path / "bag3", lut=str(small)))
    with pytest.raises(RobotCarFormatError, match="cannot be combined with --keep-bayer"):
        prepare(options(run, tmp_path / "bag3", lut=str(lut), debayer=False))
    assert not (tmp_path / "bag3").exists()


def test_mono_extrinsics_are_inverted(tmp_path):
    run = make_run(tmp_path / "runs", camera="mono_left")
    summary = convert(prepare(options(run, tmp_path / "bag", camera="mono_left")))
    topics = read_topics(tmp_path / "bag")
    images = topics["/robotcar/mono_left/image_color"]
    assert len(images) == summary.frames_written == 8
    err = np.abs(image_to_rgb(images[2].msg).astype(int) - known_rgb(2).astype(int))[2:-2, 2:-2]
    assert err.mean() < 1.5  # RGGB demosaicing
    tf = {t.child_frame_id: transform_matrix(t.transform) for t in topics["/tf_static"][0].msg.transforms}
    optical = tf["mono_left_optical"]
    # base_link is FLU: the left camera sits left of the stereo camera (+y) and looks left
    assert optical[1, 3] > 0.5
    assert optical[:3, 2] @ np.array([0, 1, 0]) > 0.8
    # and numerically: base <- stereo (FRD->FLU) <- inverse(mono_left.txt) <- G_camera_image
    xyzrpy = [float(v) for v in shared("robotcar_format", "extrinsics", "mono_left.txt").read_text().split()]
    g = np.array([[float(v) for v in line.split()] for line in
                  shared("robotcar_format", "models", "mono_left.txt").read_text().splitlines()[1:5]])
    expected = np.diag([1.0, -1.0, -1.0, 1.0]) @ np.linalg.inv(se3_from_xyzrpy(xyzrpy)) @ g
    np.testing.assert_allclose(optical, expected, atol=1e-9)
    info = camera_info_to_intrinsics(topics["/robotcar/mono_left/camera_info"][0].msg)
    assert info.k[0, 0] == 400.0 and info.k[0, 2] == pytest.approx(500.107605)


def test_errors_before_any_work(tmp_path):
    run = make_run(tmp_path / "runs")
    with pytest.raises(RobotCarFormatError, match=r"unknown RobotCar camera 'stereo/middle'; expected"):
        prepare(options(run, tmp_path / "bag", camera="stereo/middle"))
    empty_models = tmp_path / "models"
    empty_models.mkdir()
    bad = options(run, tmp_path / "bag")
    bad.models_dir = empty_models
    with pytest.raises(RobotCarFormatError, match=r"camera model file not found: .*stereo_narrow_left.txt"):
        prepare(bad)
    with pytest.raises(RobotCarFormatError, match="timestamps file not found"):
        prepare(options(run, tmp_path / "bag", camera="mono_rear"))
    with pytest.raises(RobotCarFormatError, match="no frames"):
        prepare(options(run, tmp_path / "bag", start=str(T0 + 10**9)))
    assert not (tmp_path / "bag").exists()
    convert(prepare(options(run, tmp_path / "bag")))
    with pytest.raises(BagError, match="already exists"):
        prepare(options(run, tmp_path / "bag"))
    (run / "gps" / "ins.csv").write_text("time,lat\n1,2\n")
    with pytest.raises(RobotCarFormatError, match=r"ins.csv:1: header lacks column\(s\) timestamp, ins_"):
        prepare(options(run, tmp_path / "bag2"))


def test_cli_end_to_end(tmp_path, capsys):
    run = make_run(tmp_path / "runs")
    models = shared("robotcar_format", "models")
    code = cli_main(["convert-robotcar", str(run), "--camera", "stereo/centre", "--models", str(models),
                     "--out", str(tmp_path / "run.db3"), "--no-progress", "--every", "3"])
    out = capsys.readouterr().out
    assert code == 0
    assert "frames: 3 written of 4 selected, 1 missing on disk (chunk 2: 1)" in out
    assert "condition tags: night, rain" in out and "ins.csv:38" in out
    assert (tmp_path / "run" / "run.db3").is_file()
    code = cli_main(["convert-robotcar", str(run), "--camera", "mono_left", "--models", str(tmp_path),
                     "--out", str(tmp_path / "x")])
    assert code == 2 and "camera model file not found" in capsys.readouterr().err
