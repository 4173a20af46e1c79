"""rosbag2 writing and reading: mcap and sqlite3, metadata, missing topics, damaged files, memory."""
from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import yaml

from dejavu_ros.io.bag_reader import BagReader, iter_messages, read_custom_data
from dejavu_ros.output.bag_writer import BagWriter, bag_path_and_storage
from dejavu_ros.io.errors import BagDamagedError, BagError, TopicNotFoundError
from dejavu_ros.io.images import image_message, image_to_rgb
from dejavu_ros.io.typestore import header, msg_class

T0 = 1_700_000_000_000_000_000


def frame(i: int, shape=(16, 20)) -> np.ndarray:
    """Random 4x4 blocks: distinct per frame, yet compressible (so chunk corruption is detectable)."""
    rng = np.random.default_rng(i)
    blocks = rng.integers(0, 256, (-(-shape[0] // 4), -(-shape[1] // 4), 3), dtype=np.uint8)
    return np.ascontiguousarray(blocks.repeat(4, 0).repeat(4, 1)[: shape[0], : shape[1]])


def odometry(stamp_ns: int, x: float):
    Odometry = msg_class("nav_msgs/msg/Odometry")
    Pose = msg_class("geometry_msgs/msg/Pose")
    pwc = msg_class("geometry_msgs/msg/PoseWithCovariance")
    twc = msg_class("geometry_msgs/msg/TwistWithCovariance")
    Twist, Vector3 = msg_class("geometry_msgs/msg/Twist"), msg_class("geometry_msgs/msg/Vector3")
    Point, Quaternion = msg_class("geometry_msgs/msg/Point"), msg_class("geometry_msgs/msg/Quaternion")
    pose = Pose(position=Point(x=x, y=0.0, z=0.0), orientation=Quaternion(x=0.0, y=0.0, z=0.0, w=1.0))
    zero = Vector3(x=0.0, y=0.0, z=0.0)
    return Odometry(header=header(stamp_ns, "map"), child_frame_id="base_link",
                    pose=pwc(pose=pose, covariance=np.zeros(36)),
                    twist=twc(twist=Twist(linear=zero, angular=zero), covariance=np.zeros(36)))


def write_bag(path: Path, storage="mcap", n=6, shape=(16, 20), compress=False) -> list[int]:
    """Images every 100 ms (header stamp 3 ms before log time) and odometry every 50 ms."""
    stamps = []
    with BagWriter(path, storage, compress=compress) as bag:
        bag.add_topic("/cam/image_raw", "sensor_msgs/msg/Image")
        bag.add_topic("/odom", "nav_msgs/msg/Odometry")
        bag.add_topic("/notes", "std_msgs/msg/String", latched=True)
        bag.set_metadata("robotcar.tags", "night,rain")
        bag.write("/notes", T0, msg_class("std_msgs/msg/String")(data="hello"))
        for i in range(n):
            t = T0 + i * 100_000_000
            bag.write("/odom", t, odometry(t, float(i)))
            image = image_message(frame(i, shape), "rgb8", header(t, "cam"))
            bag.write("/cam/image_raw", t + 3_000_000, image)
            bag.write("/odom", t + 50_000_000, odometry(t + 50_000_000, i + 0.5))
            stamps.append(t)
    return stamps


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_write_and_read_back(tmp_path, storage):
    stamps = write_bag(tmp_path / "bag", storage)
    with BagReader(tmp_path / "bag") as bag:
        assert bag.topics == {"/cam/image_raw": "sensor_msgs/msg/Image", "/notes": "std_msgs/msg/String",
                              "/odom": "nav_msgs/msg/Odometry"}
        assert bag.message_counts == {"/cam/image_raw": 6, "/odom": 12, "/notes": 1}
        assert bag.custom_data == {"robotcar.tags": "night,rain"}
        images = list(bag.messages(["/cam/image_raw"]))
        assert [m.stamp_ns for m in images] == stamps  # header stamp, not log time
        assert [m.log_time_ns for m in images] == [s + 3_000_000 for s in stamps]
        for i, m in enumerate(images):
            np.testing.assert_array_equal(image_to_rgb(m.msg), frame(i))
        everything = list(bag.messages())
        assert len(everything) == 19
        assert [m.log_time_ns for m in everything] == sorted(m.log_time_ns for m in everything)
        notes = [m for m in everything if m.topic == "/notes"]
        assert notes[0].msg.data == "hello" and notes[0].stamp_ns == T0  # no header: log time
        window = list(bag.messages(["/odom"], start_ns=T0 + 100_000_000, stop_ns=T0 + 300_000_000))
        assert [m.msg.pose.pose.position.x for m in window] == [1.0, 1.5, 2.0, 2.5]


def test_latched_topic_is_transient_local(tmp_path):
    write_bag(tmp_path / "bag")
    info = yaml.safe_load((tmp_path / "bag" / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    qos = {t["topic_metadata"]["name"]: yaml.safe_load(t["topic_metadata"]["offered_qos_profiles"])
           for t in info["topics_with_message_count"]}
    assert qos["/notes"][0]["durability"] == 1  # transient local
    assert qos["/odom"][0]["durability"] == 2  # volatile
    assert info["version"] == 8


def test_bare_mcap_file_can_be_read(tmp_path):
    write_bag(tmp_path / "bag")
    msgs = list(iter_messages(tmp_path / "bag" / "bag.mcap", ["/odom"]))
    assert len(msgs) == 12


def test_sqlite3_bag_without_metadata_and_cut_sqlite3(tmp_path):
    write_bag(tmp_path / "bag", "sqlite3", n=30, shape=(120, 240))
    (tmp_path / "bag" / "metadata.yaml").unlink()
    with BagReader(tmp_path / "bag") as bag:
        assert len(list(bag.messages(["/cam/image_raw"]))) == 30 and bag.damage is None
    db3 = tmp_path / "bag" / "bag.db3"
    os.truncate(db3, db3.stat().st_size * 6 // 10)
    with pytest.raises(BagError, match=r"cannot open bag .*malformed"):
        BagReader(tmp_path / "bag").open()


def test_missing_topic_lists_existing_topics(tmp_path):
    write_bag(tmp_path / "bag")
    with BagReader(tmp_path / "bag") as bag:
        with pytest.raises(TopicNotFoundError) as info:
            next(bag.messages(["/cam/image_raw", "/camera/image"]))
    text = str(info.value)
    assert "'/camera/image'" in text
    assert "/cam/image_raw (sensor_msgs/msg/Image)" in text and "/odom (nav_msgs/msg/Odometry)" in text


def test_missing_bag_and_unknown_storage(tmp_path):
    with pytest.raises(BagError, match="bag not found"):
        BagReader(tmp_path / "nope").open()
    (tmp_path / "junk.mcap").write_bytes(b"this is not an mcap file")
    with BagReader(tmp_path / "junk.mcap") as bag:  # opens in salvage mode; nothing readable
        with pytest.raises(BagDamagedError, match="not an MCAP file") as info:
            list(bag.messages())
    assert info.value.messages_read == 0 and info.value.last_stamp_ns is None


def read_until_damage(path, topics):
    got = []
    with BagReader(path) as bag:
        with pytest.raises(BagDamagedError) as info:
            for m in bag.messages(topics):
                got.append(m)
    return got, info.value


@pytest.mark.parametrize("keep_metadata", [True, False])
def test_truncated_mcap_yields_frames_before_the_cut(tmp_path, keep_metadata):
    # 1 MiB chunks: ~86 KB frames give several chunks, so a cut at 60 % keeps some of them
    stamps = write_bag(tmp_path / "bag", n=30, shape=(120, 240))
    mcap = tmp_path / "bag" / "bag.mcap"
    size = mcap.stat().st_size
    os.truncate(mcap, int(size * 0.6))
    if not keep_metadata:  # a crashed recorder leaves no metadata.yaml
        (tmp_path / "bag" / "metadata.yaml").unlink()
    got, err = read_until_damage(tmp_path / "bag", ["/cam/image_raw"])
    assert 0 < len(got) < 30
    assert [m.stamp_ns for m in got] == stamps[: len(got)]
    for i, m in enumerate(got):
        np.testing.assert_array_equal(image_to_rgb(m.msg), frame(i, (120, 240)))
    assert err.messages_read == len(got)
    assert err.last_stamp_ns == got[-1].log_time_ns
    assert "truncated" in err.reason and "bag.mcap" in err.reason
    assert f"({len(got)} messages read)" in str(err)


@pytest.mark.parametrize("compress", [False, True])
def test_cut_inside_the_only_chunk_still_recovers_its_start(tmp_path, compress):
    # rosbags puts schemas, channels and the first ~1 MiB of messages in one chunk
    stamps = write_bag(tmp_path / "bag", n=40, shape=(48, 64), compress=compress)
    mcap = tmp_path / "bag" / "bag.mcap"
    data = mcap.read_bytes()
    cut = tmp_path / "cut.mcap"  # a bare, cut storage file
    cut.write_bytes(data[: len(data) // 2])
    with BagReader(cut) as bag:
        assert "/cam/image_raw" in bag.topics
    got, err = read_until_damage(cut, ["/cam/image_raw"])
    assert 0 < len(got) < 40
    assert [m.stamp_ns for m in got] == stamps[: len(got)]
    np.testing.assert_array_equal(image_to_rgb(got[-1].msg), frame(len(got) - 1, (48, 64)))
    assert "recovered from the cut chunk" in err.reason


def test_corrupt_chunk_in_indexed_bag_is_skipped_and_reported(tmp_path):
    stamps = write_bag(tmp_path / "bag", n=30, shape=(120, 240), compress=True)
    mcap = tmp_path / "bag" / "bag.mcap"
    data = bytearray(mcap.read_bytes())
    # the second chunk's record: ... "zstd" (its compression name), u64 size, zstd frame
    second = data.index(b"zstd", data.index(b"zstd") + 1)
    frame_start = second + 4 + 8
    data[frame_start:frame_start + 16] = bytes(16)  # destroy the zstd frame header
    mcap.write_bytes(bytes(data))
    got, err = read_until_damage(tmp_path / "bag", ["/cam/image_raw"])
    got_stamps = [m.stamp_ns for m in got]
    assert got_stamps == sorted(got_stamps) and len(set(got_stamps)) == len(got_stamps)
    assert 10 < len(got) < 30  # frames on both sides of the damaged chunk survive
    assert got_stamps[0] == stamps[0] and got_stamps[-1] == stamps[-1]
    assert "chunk at byte" in err.reason and "skipped" in err.reason


def test_writer_refuses_existing_output_and_overwrites_bags_only(tmp_path):
    write_bag(tmp_path / "bag")
    with pytest.raises(BagError, match="already exists"):
        BagWriter(tmp_path / "bag")
    write_bag_again = BagWriter(tmp_path / "bag", overwrite=True)
    write_bag_again.open().close()
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.jpg").write_bytes(b"x")
    with pytest.raises(BagError, match="not a rosbag2 directory"):
        BagWriter(tmp_path / "photos", overwrite=True)
    with pytest.raises(BagError, match="unknown bag storage"):
        BagWriter(tmp_path / "x", "rosbag1")


def test_writer_errors_name_the_topic(tmp_path):
    with BagWriter(tmp_path / "bag") as bag:
        with pytest.raises(BagError, match="topic /x was not added"):
            bag.write("/x", 1, msg_class("std_msgs/msg/String")(data=""))
        with pytest.raises(BagError, match="unknown to the typestore"):
            bag.add_topic("/y", "my_msgs/msg/Thing")
    assert read_custom_data(tmp_path / "bag") == {}


def test_bag_path_and_storage():
    assert bag_path_and_storage("out/run.mcap") == (Path("out/run"), "mcap")
    assert bag_path_and_storage("out/run.db3") == (Path("out/run"), "sqlite3")
    assert bag_path_and_storage("out/run", "sqlite3") == (Path("out/run"), "sqlite3")
    assert bag_path_and_storage("out/run") == (Path("out/run"), "mcap")
    with pytest.raises(BagError, match="implies storage"):
        bag_path_and_storage("run.mcap", "sqlite3")


def test_reading_and_writing_use_bounded_memory(tmp_path):
    n, shape = 60, (200, 300)  # 60 x 180 KB = 10.8 MB of pixels
    tracemalloc.start()
    try:
        write_bag(tmp_path / "bag", n=n, shape=shape)
        _, write_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        count = 0
        with BagReader(tmp_path / "bag") as bag:
            for m in bag.messages(["/cam/image_raw"]):
                count += 1
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == n
    pixels = n * shape[0] * shape[1] * 3
    assert write_peak < pixels / 3, write_peak
    assert read_peak < pixels / 3, read_peak
