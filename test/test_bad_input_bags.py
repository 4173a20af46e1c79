"""Bad input: bags and replay outputs — unknown topics, truncated or looping bags, bad poses and frames, output paths."""
from __future__ import annotations

import numpy as np
import pytest
from bad_input_support import (
    IMG,
    ODOM,
    STEP_NS,
    T0,
    Case,
    case_params,
    check_case,
    no_map_written,
    write_bag,
)

from dejavu_ros.map import KeyframeMap


def truncated_bag(env):
    (storage,) = env.a.bag.glob("*.mcap")
    data = storage.read_bytes()
    (env.tmp / "cut.mcap").write_bytes(data[: int(len(data) * 0.6)])
    return env.build(env.tmp / "cut.mcap")


def check_truncated_bag(env, run):
    summary = run.json()
    assert summary["damage"] and 1 <= summary["keyframes_added"] < 8
    with KeyframeMap.open(env.tmp / "built.db") as m:
        assert m.integrity_check() == "ok" and len(m) == summary["keyframes_added"]


def junk_bag(env):
    (env.tmp / "junk.mcap").write_bytes(b"\x89MCAP0\r\n" + np.random.default_rng(0).bytes(2000))
    return env.build(env.tmp / "junk.mcap")


def looping_bag(env):
    """A recording of `ros2 bag play --loop`: header stamps restart while log times go on."""
    xs = list(np.arange(0.0, 18.0, 3.0)) * 2
    stamps = [T0 + (i % 6) * STEP_NS for i in range(12)]
    return env.build(write_bag(env.tmp / "loop.mcap", xs, header_stamps=stamps))


def check_looping_bag(env, run):
    summary = run.json()
    assert summary["frames_read"] == 12 and summary["keyframes_added"] == 12  # time_jump restarts selection
    with KeyframeMap.open(env.tmp / "built.db") as m:
        assert m.integrity_check() == "ok"
        stamps = [kf.stamp for kf in m]
        positions = [float(kf.position[0]) for kf in m]
    assert stamps[6] < stamps[5] and positions[:6] == positions[6:]


def nan_odometry(env):
    def position(i, x):
        return (float("nan"), 0.0, 0.0) if i in (2, 5) else (float(x), 0.0, 0.0)
    return env.build(write_bag(env.tmp / "nan.mcap", np.arange(0.0, 24.0, 3.0), position=position))


def check_nan_odometry(env, run):
    summary = run.json()
    assert summary["skipped"]["no_pose_within_tolerance"] == 2 and summary["keyframes_added"] == 6
    with KeyframeMap.open(env.tmp / "built.db") as m:
        assert np.isfinite(m.load_poses()[1]).all()


def all_poses_bad(env):
    bag = write_bag(env.tmp / "bad.mcap", [0.0, 3.0], position=lambda i, x: (float("inf"), 0.0, 0.0))
    return env.build(bag)


def bad_frames_in_bag(env):
    def edit(i, img):
        if i == 1:
            img.encoding = "weird42"
        elif i == 3:
            img.step = 10
        elif i == 5:
            img.data = img.data[: len(img.data) // 2]
    return env.build(write_bag(env.tmp / "mixed.mcap", np.arange(0.0, 24.0, 3.0), edit_image=edit))


def check_bad_frames(env, run):
    summary = run.json()
    skipped = " ".join(summary["skipped"])
    assert summary["frames_read"] == 8 and summary["keyframes_added"] == 5
    assert "topic '/cam/image' field 'encoding'" in skipped and "field 'step'" in skipped
    assert "field 'data'" in skipped


def image_topic_of_wrong_type(env):
    return env.build(env.a.bag, "--image-topic", ODOM)


def output_under_a_file(option: str):
    def action(env):
        (env.tmp / "notes.txt").write_text("a file, not a folder")
        return env.relocalize(option, env.tmp / "notes.txt" / "out.json")
    return action


def output_is_a_folder(option: str):
    def action(env):
        (env.tmp / "taken").mkdir()
        return env.relocalize(option, env.tmp / "taken")
    return action


def missing_parents_are_created(env):
    return env.relocalize("--report", env.tmp / "new" / "sub" / "frames.jsonl")


def check_report_written(env, run):
    assert len((env.tmp / "new" / "sub" / "frames.jsonl").read_text().splitlines()) == 8


def existing_bag_out(env):
    (env.tmp / "results").mkdir()
    (env.tmp / "results" / "keep.txt").write_text("mine")
    return env.relocalize("--out", env.tmp / "results.mcap")


def existing_bag_kept(env, _run):
    assert (env.tmp / "results" / "keep.txt").read_text() == "mine"


def bag_named_like_rosbag2(env):
    return env.relocalize("--out", env.tmp / "run.mcap")


def check_bag_folder(env, run):
    assert (env.tmp / "run" / "metadata.yaml").is_file() and not (env.tmp / "run.mcap").exists()


CASES = [
    Case("bag-unknown-topic", lambda e: e.build(e.a.bag, "--image-topic", "/nope"), 2,
         r"bag .*street has no topic '/nope'; topics in the bag: /cam/image \(sensor_msgs/msg/Image\)",
         after=no_map_written),
    Case("bag-truncated-mcap", truncated_bag, 0, after=check_truncated_bag),
    Case("bag-missing", lambda e: e.build(e.tmp / "none.mcap"), 2, r"bag not found: .*none\.mcap",
         after=no_map_written),
    Case("bag-random-bytes", junk_bag, 2, r"junk\.mcap.*(damaged|cannot|not a)", after=no_map_written),
    Case("bag-stamps-go-backwards", looping_bag, 0, after=check_looping_bag),
    Case("bag-nan-odometry", nan_odometry, 0, after=check_nan_odometry),
    Case("bag-no-valid-pose", all_poses_bad, 2, r"bag .*/bad: no valid pose on /odom", after=no_map_written),
    Case("bag-bad-frames-skipped", bad_frames_in_bag, 0, after=check_bad_frames),
    Case("bag-odom-topic-not-a-pose", lambda e: e.build(e.a.bag, "--odom-topic", IMG), 2,
         r"topic '/cam/image'.*(is not a pose message|type sensor_msgs/msg/Image; expected nav_msgs)",
         after=no_map_written),
    Case("bag-image-topic-not-an-image", image_topic_of_wrong_type, 2, r"/odom.*nav_msgs/msg/Odometry",
         after=no_map_written),
    Case("replay-image-topic-not-an-image", lambda e: e.relocalize("--image-topic", ODOM), 2,
         r"/odom.*nav_msgs/msg/Odometry"),
    Case("replay-report-under-a-file", output_under_a_file("--report"), 2,
         r"--report .*notes\.txt/out\.json: .*notes\.txt is a file, not a folder"),
    Case("replay-summary-under-a-file", output_under_a_file("--summary-json"), 2,
         r"--summary-json .*out\.json: .*is a file, not a folder"),
    Case("replay-report-is-a-folder", output_is_a_folder("--report"), 2, r"--report .*taken: is a folder"),
    Case("replay-summary-is-a-folder", output_is_a_folder("--summary-json"), 2,
         r"--summary-json .*taken: is a folder"),
    Case("replay-debug-dir-is-a-file", output_under_a_file("--debug-dir"), 2, r"--debug-dir .*is a file"),
    Case("replay-report-parents-created", missing_parents_are_created, 0, after=check_report_written),
    Case("replay-out-bag-exists", existing_bag_out, 2, r"--out .*results\.mcap: bag folder .*results already "
         r"exists; nothing was overwritten", after=existing_bag_kept),
    Case("replay-out-names-the-bag-folder", bag_named_like_rosbag2, 0, after=check_bag_folder),
]


@pytest.mark.parametrize("case", case_params(CASES))
def test_bad_input(case, assets, tmp_path):
    check_case(case, assets, tmp_path)
