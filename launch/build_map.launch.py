"""Build (or extend) a keyframe map from camera images and odometry.

    ros2 launch dejavu_ros build_map.launch.py map:=/data/campus.db image:=/camera/image_raw \
        odom:=/odom   # topic arguments are relative names: a namespace applies unless they start with /
    # then, in another terminal: ros2 bag play my_drive      (Ctrl-C the launch to commit the map)

Images are paired with the odometry (or ``pose``) message nearest in time (node.pose_tolerance_s).
The pose must be the camera's pose in the map frame.
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
    out = {"node.map_mode": "map"}
    for arg, param in names.items():
        value = LaunchConfiguration(arg).perform(context).strip()
        if value:
            out[param] = value
    return out


def _nodes(context):
    image = LaunchConfiguration("image")
    remappings = [("image", image), ("image/compressed", [image, "/compressed"]),
                  ("camera_info", LaunchConfiguration("camera_info")),
                  ("odom", LaunchConfiguration("odom")), ("pose", LaunchConfiguration("pose"))]
    mapper = Node(
        package=PACKAGE, executable="relocalizer", name="relocalizer",
        namespace=LaunchConfiguration("namespace"),
        parameters=[LaunchConfiguration("params_file"), _overrides(context)],
        remappings=remappings, output="screen", emulate_tty=True,
        sigterm_timeout="60")  # committing a large map may take a while
    rviz = Node(
        package="rviz2", executable="rviz2", name="rviz2", namespace=LaunchConfiguration("namespace"),
        arguments=["-d", os.path.join(get_package_share_directory(PACKAGE), "config", "relocalize.rviz")],
        remappings=[("image", image)], condition=IfCondition(LaunchConfiguration("use_rviz")), output="log")
    return [mapper, rviz]


def generate_launch_description():
    share = get_package_share_directory(PACKAGE)
    return LaunchDescription([
        DeclareLaunchArgument("map", default_value="",
                              description="Keyframe map (.db) to create or append to (node.map_path)"),
        DeclareLaunchArgument("image", default_value="/camera/image_raw", description="Image topic"),
        DeclareLaunchArgument("camera_info", default_value="/camera/camera_info",
                              description="CameraInfo topic (stored with each keyframe when present)"),
        DeclareLaunchArgument("odom", default_value="odom",
                              description="nav_msgs/Odometry topic giving the camera pose (relative, like pose)"),
        DeclareLaunchArgument("pose", default_value="pose",
                              description="Alternative geometry_msgs/PoseWithCovarianceStamped topic"),
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "build_map.yaml"),
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
