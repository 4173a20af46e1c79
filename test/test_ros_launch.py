"""The launch files for real: ``ros2 launch`` starts the node as its own process (needs a ROS 2 install).

Runs only where the ``ros2`` command, rclpy and an installed ``dejavu_ros`` (colcon build, so the
ament index knows its share folder) are all present; skipped otherwise. The map-building run is
stopped with Ctrl-C (SIGINT) and must leave a committed map behind.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from dejavu_ros.map.store import KeyframeMap
from dejavu_ros.resources import default_model_path

from ros_harness import ns, rgb_image_msg, robotcar, robotcar_map, ros  # noqa: F401 (fixtures)


@pytest.fixture
def installed(ros):
    if shutil.which("ros2") is None:
        pytest.skip("the ros2 command is not installed")
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        get_package_share_directory("dejavu_ros")
    except PackageNotFoundError:
        pytest.skip("dejavu_ros is not installed in an ament index (colcon build it)")
    if not default_model_path().is_file():
        pytest.skip("default model not shipped")


class Launched:
    """``ros2 launch dejavu_ros <file> args…`` in its own process group, with a probe node beside it."""

    def __init__(self, ros, launch_file: str, *args: str, namespace: str):
        from rclpy.executors import SingleThreadedExecutor

        self.proc = subprocess.Popen(["ros2", "launch", "dejavu_ros", launch_file, f"namespace:={namespace}",
                                      *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        self.probe = ros.create_node(f"launch_probe_{namespace}")
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.probe)
        self.output = ""

    def spin_until(self, predicate, timeout_s: float) -> bool:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.05)
            if predicate():
                return True
            assert self.proc.poll() is None, f"launch exited early:\n{self.proc.stdout.read()}"
        return predicate()

    def interrupt(self, timeout_s: float = 60.0) -> int:
        """Ctrl-C, as a user would: launch forwards SIGINT to the node."""
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.output, _ = self.proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.output, _ = self.proc.communicate()
            pytest.fail(f"launch did not stop within {timeout_s} s:\n{self.output}")
        return self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.communicate()
        self.executor.shutdown()
        self.probe.destroy_node()


@pytest.mark.ros
@pytest.mark.slow
def test_relocalize_launch_answers_on_the_remapped_topics(installed, ros, robotcar_map):
    from geometry_msgs.msg import PoseArray
    from sensor_msgs.msg import Image

    map_path, _ = robotcar_map
    run = Launched(ros, "relocalize.launch.py", f"map:={map_path}", "image:=/cam/image",
                   "device:=cpu", namespace="launchtest")
    try:
        got: list = []
        run.probe.create_subscription(PoseArray, "/launchtest/relocalizer/candidates", got.append, 10)
        pub = run.probe.create_publisher(Image, "/cam/image", 10)
        query = rgb_image_msg(robotcar("anchor_1"), 5_000_000_000)

        def answered():
            pub.publish(query)
            return any(ns(m.header.stamp) == 5_000_000_000 for m in got)

        assert run.spin_until(answered, 120.0), "no candidates from the launched node"
        best = next(m for m in got if ns(m.header.stamp) == 5_000_000_000).poses[0]
        assert best.position.x == pytest.approx(0.0)
        assert run.interrupt() == 0, run.output
        assert "localize mode" in run.output and "2 keyframes" in run.output
    finally:
        run.close()


@pytest.mark.ros
@pytest.mark.slow
def test_build_map_launch_commits_the_map_on_ctrl_c(installed, ros, tmp_path):
    from nav_msgs.msg import Odometry
    from sensor_msgs.msg import Image

    map_path = tmp_path / "new.db"
    run = Launched(ros, "build_map.launch.py", f"map:={map_path}", "image:=/cam/image", "odom:=/cam/odom",
                   "device:=cpu", namespace="maptest")
    try:
        image_pub = run.probe.create_publisher(Image, "/cam/image", 10)
        odom_pub = run.probe.create_publisher(Odometry, "/cam/odom", 50)
        frames = [robotcar("anchor_0"), robotcar("negative_0")]
        sent = 0

        def drive():  # a car moving 10 m between frames, odometry and camera in step
            nonlocal sent
            odom = Odometry()
            odom.header.stamp.sec, odom.header.frame_id = 10 + sent, "map"
            odom.pose.pose.position.x, odom.pose.pose.orientation.w = 10.0 * sent, 1.0
            odom_pub.publish(odom)
            image_pub.publish(rgb_image_msg(frames[sent % 2], (10 + sent) * 1_000_000_000))
            sent += 1
            time.sleep(0.3)
            return sent >= 30

        run.spin_until(drive, 120.0)
        time.sleep(2.0)
        assert run.interrupt() == 0, run.output
        committed_line = re.search(r"map committed: (\d+) keyframes", run.output)
        assert committed_line, run.output
    finally:
        run.close()
    with KeyframeMap.open(map_path, "r") as committed:
        # every keyframe the node had when Ctrl-C came is in the file (frames the busy worker
        # dropped never became keyframes, so the count is the node's own)
        assert len(committed) == int(committed_line.group(1)) >= 2
        assert committed.integrity_check() == "ok"
