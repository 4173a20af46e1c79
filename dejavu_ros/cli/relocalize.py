"""`dejavu-ros relocalize BAG --map MAP.db --image-topic T`: offline relocalization of a bag.

Writes a results bag with the node's topics (play it into rviz), JSON lines per frame, and
prints frames, % relocalized, per-stage latency p50/p99 and, with ground-truth poses, errors
and recall at 5 m / 10 m.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..replay.report import format_summary
from .common import add_config_arguments, config_from_args
from .errors import CliError
from .outputs import output_bag, output_file, output_folder


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("relocalize", help="relocalize every frame of a bag against a map",
                              description=__doc__)
    p.add_argument("bag", type=Path, help="rosbag2 folder or .mcap/.db3 file")
    p.add_argument("--map", type=Path, required=True, help="keyframe map (.db)")
    p.add_argument("--image-topic", required=True)
    p.add_argument("--camera-info-topic")
    p.add_argument("--gt-topic", help="ground-truth pose topic (Odometry / PoseStamped) for errors and recall")
    p.add_argument("--odom-topic", help="the robot's odometry (any frame; only the distance travelled is used) for "
                                        "the route filter of engine.sequence_length")
    p.add_argument("--out", type=Path, help="results bag folder with the node's topics (rosbag2 convention: "
                   "NAME or NAME.mcap makes folder NAME; .db3 picks sqlite3)")
    p.add_argument("--report", type=Path, help="JSON lines, one record per frame")
    p.add_argument("--summary-json", type=Path, help="write the summary as JSON here")
    p.add_argument("--debug-dir", type=Path, help="save each frame's debug image (query | keyframe, matches) here")
    p.add_argument("--every", type=int, default=1, help="use every N-th frame")
    p.add_argument("--no-debug-images", action="store_true", help="leave debug images out of the results bag")
    p.add_argument("--allow-model-mismatch", action="store_true")
    add_config_arguments(p, ["features", "similarity", "engine", "trust", "matching"])
    p.set_defaults(func=run)


def run(args) -> int:
    if args.every < 1:
        raise CliError(f"--every must be ≥ 1, got {args.every}")
    if not args.map.is_file():
        raise CliError(f"map not found: {args.map}")
    cfg = config_from_args(args, node__map_path=str(args.map), node__allow_model_mismatch=args.allow_model_mismatch)
    # every output is checked before the first frame is processed
    out_bag = output_bag(args.out, "--out")[0] if args.out else None
    report = output_file(args.report, "--report") if args.report else None
    summary_json = output_file(args.summary_json, "--summary-json") if args.summary_json else None
    debug_dir = output_folder(args.debug_dir, "--debug-dir") if args.debug_dir else None
    from ..replay.relocalize import relocalize_bag

    summary = relocalize_bag(args.bag, cfg, args.image_topic, out_bag=out_bag, report=report,
                             camera_info_topic=args.camera_info_topic, gt_pose_topic=args.gt_topic,
                             every=args.every, debug_images=not args.no_debug_images,
                             debug_dir=debug_dir, odom_topic=args.odom_topic).as_dict()
    print(format_summary(summary))
    if summary_json:
        summary_json.write_text(json.dumps(summary, indent=2))
    return 0
