"""`dejavu-ros convert-robotcar`: one camera of a raw Oxford RobotCar run -> a rosbag2 bag."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..datasets.robotcar.layout import CAMERAS
from .errors import CliError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "convert-robotcar", help="convert a raw RobotCar run (one camera + INS/VO poses + tags) to rosbag2",
        description="Convert one camera of a raw Oxford RobotCar run to a rosbag2 bag with CameraInfo, INS "
                    "and VO odometry, camera poses, /tf_static and the run's condition tags (bag metadata).")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="extracted run folder (YYYY-MM-DD-HH-MM-SS)")
    p.add_argument("--camera", required=True, choices=list(CAMERAS), help="camera to convert")
    p.add_argument("--models", required=True, type=Path, metavar="DIR",
                   help="the RobotCar SDK's models folder")
    p.add_argument("--out", required=True, type=Path, metavar="BAG",
                   help="output bag folder; a .mcap / .db3 suffix picks the storage "
                        "(the folder is the name without it)")
    p.add_argument("--storage", choices=("mcap", "sqlite3"), default=None,
                   help="bag storage (default mcap)")
    p.add_argument("--start", metavar="T", help="first frame: RobotCar timestamp (µs) or seconds from the "
                   "first frame (e.g. 30 or 30s)")
    p.add_argument("--end", metavar="T", help="last frame, same units as --start")
    p.add_argument("--every", type=int, default=1, metavar="N", help="keep every N-th listed frame")
    p.add_argument("--lut", metavar="FILE", help="undistort with this SDK LUT (*_distortion_lut.bin); "
                   "'auto' = <models>/<model>_distortion_lut.bin")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--debayer", dest="debayer", action="store_true", default=True,
                      help="demosaic to rgb8 (default)")
    mode.add_argument("--keep-bayer", dest="debayer", action="store_false",
                      help="write the raw mosaic (bayer_gbrg8 stereo / bayer_rggb8 mono)")
    p.add_argument("--extrinsics", type=Path, metavar="DIR",
                   help="the SDK's extrinsics folder (default: <models>/../extrinsics when present)")
    p.add_argument("--origin", metavar="N,E,D", help="world origin as UTM northing,easting,down (share one "
                   "between runs to map them in one frame; default: the first INS pose)")
    p.add_argument("--world-frame", default="map", help="frame id of the ENU world (default: map)")
    p.add_argument("--tags", type=Path, metavar="FILE",
                   help="condition tags yaml (default: RUN/tags/<run>.yaml)")
    p.add_argument("--compress", action="store_true", help="zstd-compress the bag's chunks")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output bag")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(func=run)


def _origin(text: str | None) -> tuple[float, float, float] | None:
    if not text:
        return None
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise CliError(f"--origin {text!r}: expected three numbers N,E,D")
    return values  # type: ignore[return-value]


def run(args: argparse.Namespace) -> int:
    from ..datasets.robotcar.convert import convert
    from ..datasets.robotcar.plan import ConvertOptions, prepare

    options = ConvertOptions(run_dir=args.run_dir, camera=args.camera, models_dir=args.models, out=args.out,
                             storage=args.storage, start=args.start, end=args.end, every=args.every,
                             lut=args.lut, debayer=args.debayer, extrinsics_dir=args.extrinsics,
                             origin_ned=_origin(args.origin), world_frame=args.world_frame,
                             tags_file=args.tags, overwrite=args.overwrite, compress=args.compress,
                             progress=args.progress)
    plan = prepare(options)
    print(f"converting {plan.frames_selected} frames of {plan.spec.name} "
          f"({plan.image_size[0]}x{plan.image_size[1]}) to {plan.bag_path} [{plan.storage}]")
    summary = convert(plan)
    print("\n".join(summary.lines()))
    return 0
