"""Relocalize a camera against a keyframe map.

    ros2 launch dejavu_ros relocalize.launch.py map:=/data/campus.db image:=/camera/image_raw \
        camera_info:=/camera/camera_info odom:=/odom use_rviz:=true
    # hand trusted poses to AMCL / nav2, and publish map → odom:
    ros2 launch dejavu_ros relocalize.launch.py map:=/data/campus.db publish_initialpose:=true publish_tf:=true

Arguments left empty keep the value from ``params_file`` (config/relocalize.yaml by default). Topic
arguments are relative names, so ``namespace`` applies to them unless they start with ``/``.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = "dejavu_ros"


def _overrides(context):
    """Parameters given on the command line; empty arguments leave the params file in charge."""
    names = {"map": "node.map_path", "model": "features.model", "device": "features.device"}
    switches = {"publish_initialpose": "node.publish_initialpose", "publish_tf": "node.publish_tf"}
    out = {}
    for arg, param in names.items():
        value = LaunchConfiguration(arg).perform(context).strip()
        if value:
            out[param] = value
    for arg, param in switches.items():
        value = LaunchConfiguration(arg).perform(context).strip().lower()
        if value:
            out[param] = value in ("true", "1", "yes", "on")
    return out


def _nodes(context):
    image = LaunchConfiguration("image")
    remappings = [("image", image), ("image/compressed", [image, "/compressed"]),
                  ("camera_info", LaunchConfiguration("camera_info")), ("odom", LaunchConfiguration("odom"))]
    relocalizer = Node(
        package=PACKAGE, executable="relocalizer", name="relocalizer",
        namespace=LaunchConfiguration("namespace"),
        parameters=[LaunchConfiguration("params_file"), _overrides(context)],
        remappings=remappings, output="screen", emulate_tty=True)
    rviz = Node(
        package="rviz2", executable="rviz2", name="rviz2", namespace=LaunchConfiguration("namespace"),
        arguments=["-d", os.path.join(get_package_share_directory(PACKAGE), "config", "relocalize.rviz")],
        remappings=[("image", image)], condition=IfCondition(LaunchConfiguration("use_rviz")), output="log")
    return [relocalizer, rviz]


def generate_launch_description():
    share = get_package_share_directory(PACKAGE)
    return LaunchDescription([
        DeclareLaunchArgument("map", default_value="",
                              description="Keyframe map (.db) to localize against (node.map_path)"),
        DeclareLaunchArgument("image", default_value="/camera/image_raw",
                              description="Image topic (sensor_msgs/Image; '<image>/compressed' is used "
                                          "when node.image_transport is compressed)"),
        DeclareLaunchArgument("camera_info", default_value="/camera/camera_info",
                              description="CameraInfo topic; optional, enables the essential matrix"),
        DeclareLaunchArgument("odom", default_value="odom",
                              description="nav_msgs/Odometry topic: the distance travelled feeds the route filter "
                                          "(any odometry frame; node.use_odometry)"),
        DeclareLaunchArgument("publish_initialpose", default_value="",
                              description="true: trusted poses of the robot base go to 'initialpose' (AMCL, nav2); "
                                          "empty = params file"),
        DeclareLaunchArgument("publish_tf", default_value="",
                              description="true: publish map → odom from trusted poses (gives rviz its map frame); "
                                          "empty = params file"),
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "relocalize.yaml"),
                              description="ROS 2 params file with the node's parameters"),
        DeclareLaunchArgument("model", default_value="",
                              description="DVF weights (.safetensors); empty = params file / shipped model"),
        DeclareLaunchArgument("device", default_value="",
                              description="Inference device (auto, cpu, cuda, cuda:N); empty = params file"),
        DeclareLaunchArgument("use_rviz", default_value="false",
                              description="Start rviz2 with config/relocalize.rviz"),
        DeclareLaunchArgument("namespace", default_value="",
                              description="Namespace of the relocalizer (and rviz2) node"),
        OpaqueFunction(function=_nodes),
    ])
