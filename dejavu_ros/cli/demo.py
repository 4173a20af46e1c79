"""`dejavu-ros demo [--out DIR]`: the main job on generated data, offline, in a few minutes on CPU.

A synthetic street is rendered by day and by night and written as two rosbag2 files; a map is
built from the day bag and the night bag is relocalized against it. Prints the real recall and
writes the bags, the map, the results bag, per-frame JSON and a trajectory plot into DIR.
"""
from __future__ import annotations

from pathlib import Path

from .common import add_config_arguments, config_from_args
from .errors import CliError
from .outputs import output_folder


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("demo", help="generated day/night street: build a map, relocalize, report",
                              description=__doc__)
    p.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder (default demo_out)")
    p.add_argument("--condition", choices=("night", "fog", "day"), default="night",
                   help="condition of the query traversal (the map is always day)")
    p.add_argument("--length", type=float, default=150.0, help="route length in metres")
    p.add_argument("--odometry", action="store_true",
                   help="give route localization the query drive's odometry (the distance travelled)")
    add_config_arguments(p, ["features", "similarity", "engine", "trust", "matching", "keyframes"])
    p.set_defaults(func=run)


def run(args) -> int:
    from ..demo.run import MIN_LENGTH_M, DemoSettings, format_demo, run_demo

    if not MIN_LENGTH_M <= args.length <= 10_000:
        raise CliError(f"--length {args.length:g}: the route must be {MIN_LENGTH_M:g} to 10000 m long")
    cfg = config_from_args(args)
    out = output_folder(args.out, "--out")
    settings = DemoSettings(length_m=args.length, query_condition=args.condition, odometry=args.odometry)
    summary = run_demo(out, cfg, settings)
    print(format_demo(summary, args.out))
    return 0
