"""Launch files and the rviz config, checked without a ROS install (launch is not importable here)."""
from __future__ import annotations

import ast

import pytest
import yaml

from conftest import REPO

DOCUMENTED_ARGUMENTS = {
    "relocalize.launch.py": {"map", "image", "camera_info", "odom", "publish_initialpose", "publish_tf",
                             "params_file", "model", "device", "use_rviz", "namespace"},
    "build_map.launch.py": {"map", "image", "camera_info", "odom", "pose", "params_file", "model", "device",
                            "use_rviz", "namespace"},
}


def declared_arguments(tree: ast.Module) -> dict[str, ast.Call]:
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == \
                "DeclareLaunchArgument":
            assert isinstance(node.args[0], ast.Constant), "argument names must be literals"
            out[node.args[0].value] = node
    return out


@pytest.mark.parametrize("name", sorted(DOCUMENTED_ARGUMENTS))
def test_launch_file_declares_the_documented_arguments(name):
    source = (REPO / "launch" / name).read_text()
    tree = ast.parse(source, filename=name)
    compile(tree, name, "exec")
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "generate_launch_description" in functions
    args = declared_arguments(tree)
    assert set(args) == DOCUMENTED_ARGUMENTS[name]
    for arg, call in args.items():
        keywords = {k.arg for k in call.keywords}
        assert {"default_value", "description"} <= keywords, \
            f"{name}: argument {arg} lacks a default or a description"
    # every declared argument is read somewhere (LaunchConfiguration("x") or a name table)
    constants = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    unused = {arg for arg in args if constants.count(arg) < 2}
    assert not unused, f"{name}: declared but unused: {unused}"
    # it starts our node with the console script from setup.py
    assert 'executable="relocalizer"' in source and 'package=PACKAGE' in source


def test_launch_files_reference_shipped_config():
    for name, config in (("relocalize.launch.py", "relocalize.yaml"),
                         ("build_map.launch.py", "build_map.yaml")):
        source = (REPO / "launch" / name).read_text()
        assert f'"{config}"' in source and '"relocalize.rviz"' in source
        assert (REPO / "config" / config).is_file()
    assert "console_scripts" in (REPO / "setup.py").read_text()
    assert "relocalizer = dejavu_ros.ros.relocalizer_node:main" in (REPO / "setup.py").read_text()


def test_launch_arguments_are_documented():
    docs = (REPO / "README.md").read_text()
    for args in DOCUMENTED_ARGUMENTS.values():
        for arg in args:
            assert f"`{arg}`" in docs, f"launch argument {arg} is not documented"


def test_rviz_config_is_valid_and_shows_the_outputs():
    cfg = yaml.safe_load((REPO / "config" / "relocalize.rviz").read_text())
    manager = cfg["Visualization Manager"]
    assert manager["Global Options"]["Fixed Frame"] == "map"
    displays = {d["Name"]: d for d in manager["Displays"]}
    by_topic = {d["Topic"]["Value"]: d for d in displays.values() if "Topic" in d}
    expected = {"relocalizer/candidates": "rviz_default_plugins/PoseArray",
                "relocalizer/pose": "rviz_default_plugins/PoseWithCovariance",
                "relocalizer/map_markers": "rviz_default_plugins/MarkerArray",
                "relocalizer/candidate_scores": "rviz_default_plugins/PointCloud2",
                "relocalizer/debug_image": "rviz_default_plugins/Image",
                "image": "rviz_default_plugins/Image"}
    for topic, cls in expected.items():
        assert by_topic[topic]["Class"] == cls, topic
    scores = by_topic["relocalizer/candidate_scores"]
    assert scores["Color Transformer"] == "Intensity" and scores["Channel Name"] == "cx_score"
    markers = by_topic["relocalizer/map_markers"]["Topic"]
    assert markers["Durability Policy"] == "Transient Local"  # the node latches the map markers
    assert all(d["Class"].startswith("rviz_default_plugins/") for d in displays.values())


def test_package_xml_declares_what_the_code_uses():
    """rosdep installs from package.xml: every ROS package the code imports or names must be there."""
    import re
    import xml.etree.ElementTree as ET

    root = ET.parse(REPO / "package.xml").getroot()
    assert root.get("format") == "3" and root.findtext("name") == "dejavu_ros"
    assert f'version="{root.findtext("version")}"' in (REPO / "setup.py").read_text()
    assert root.find("export/build_type").text == "ament_python"
    exec_depends = {e.text for e in root.findall("exec_depend")}
    used = set()
    node_code = [*(REPO / "dejavu_ros" / "ros").glob("*.py"),  # the node and what it builds messages with
                 REPO / "dejavu_ros" / "output" / "messages.py",
                 *(REPO / "dejavu_ros" / "io" / name for name in ("images.py", "camera_info.py"))]
    for path in node_code:
        text = path.read_text()
        used |= set(re.findall(r'"(\w+)/(?:msg|srv)/\w+"', text)) - {"pkg"}  # minus the docstring's example
        used |= set(re.findall(r"^\s*(?:from|import) (rclpy|rcl_interfaces|std_srvs|\w+_msgs)\b", text, re.M))
    for path in (REPO / "launch").glob("*.py"):
        used |= set(re.findall(r"^\s*from (launch_ros|launch|ament_index_python)\b", path.read_text(), re.M))
    assert {"rclpy", "sensor_msgs", "geometry_msgs", "std_srvs", "launch_ros"} <= used  # the scan works
    assert used <= exec_depends, f"used but not declared: {sorted(used - exec_depends)}"
