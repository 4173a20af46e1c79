"""`dejavu-ros build-map`: a keyframe map from a rosbag2 file (or a RobotCar Seasons folder)."""
from __future__ import annotations

import json
from pathlib import Path

from .common import add_config_arguments, config_from_args
from .errors import CliError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("build-map", help="build a keyframe map from a bag", description=__doc__)
    p.add_argument("bag", nargs="?", type=Path, help="rosbag2 folder or .mcap/.db3 file")
    p.add_argument("--out", type=Path, required=True, help="map file to create (.db)")
    p.add_argument("--image-topic", help="sensor_msgs/Image or CompressedImage topic")
    pose = p.add_mutually_exclusive_group()
    pose.add_argument("--odom-topic", help="nav_msgs/Odometry topic with the camera poses")
    pose.add_argument("--pose-topic", help="PoseStamped / PoseWithCovarianceStamped topic")
    extrinsic = p.add_mutually_exclusive_group()
    extrinsic.add_argument("--camera-pose", type=float, nargs=6, metavar=("X", "Y", "Z", "ROLL", "PITCH", "YAW"),
                           help="the pose topic is the robot's: the camera optical frame (z forward, x right, "
                                "y down) sits at this pose in the robot frame (metres, radians)")
    extrinsic.add_argument("--extrinsic-from-tf", action="store_true",
                           help="the pose topic is the robot's: read the camera's pose on it from the bag's "
                                "/tf_static (robot = the poses' child frame, camera = the images' frame)")
    p.add_argument("--camera-info-topic", help="CameraInfo topic (intrinsics enable E-matrix and PnP)")
    p.add_argument("--depth-topic", help="aligned depth image (16UC1 mm or 32FC1 m): stores 3-D corners")
    p.add_argument("--append", action="store_true", help="extend an existing map instead of refusing")
    p.add_argument("--robotcar-seasons", type=Path, help="RobotCar Seasons root instead of a bag")
    p.add_argument("--condition", default="overcast-reference", help="RobotCar Seasons condition")
    p.add_argument("--camera", default="rear", help="RobotCar Seasons camera (left, rear, right)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_config_arguments(p, ["features", "similarity", "matching", "keyframes"])
    p.set_defaults(func=run)


def run(args) -> int:
    from .outputs import output_file

    cfg = config_from_args(args)
    output_file(args.out, "--out")  # a folder in the way, or no way to create its parents: before any frame is read
    if args.robotcar_seasons:
        from ..replay.seasons import build_map_from_seasons

        summary = build_map_from_seasons(args.robotcar_seasons, args.out, args.condition, args.camera, cfg,
                                         append=args.append)
    else:
        if args.bag is None or not args.image_topic or not (args.odom_topic or args.pose_topic):
            raise CliError("give BAG, --image-topic and --odom-topic or --pose-topic "
                           "(or --robotcar-seasons DIR)")
        from ..replay.build import build_map_from_bag

        summary = build_map_from_bag(args.bag, args.out, args.image_topic, args.odom_topic or args.pose_topic,
                                     cfg, camera_info_topic=args.camera_info_topic, depth_topic=args.depth_topic,
                                     append=args.append, camera_pose=args.camera_pose,
                                     extrinsic="tf" if args.extrinsic_from_tf else None)
    info = summary.as_dict()
    if args.json:
        print(json.dumps(info))
    else:
        skipped = ", ".join(f"{k}: {v}" for k, v in sorted(info["skipped"].items())) or "none"
        print(f"frames read: {info['frames_read']}  keyframes added: {info['keyframes_added']}  "
              f"map: {info['map']}\nskipped: {skipped}")
        if info["damage"]:
            print(f"bag damaged: {info['damage']}")
    return 0 if info["keyframes_added"] or info["frames_read"] else 1
