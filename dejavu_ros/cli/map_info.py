"""`dejavu-ros map-info MAP.db [--json]`: what a keyframe map holds and whether it is intact.

Exit status: 0 when the map opens and passes SQLite's integrity check, 1 when it opens but the
check finds damage, 2 when the file is missing, empty, truncated or not a map.
"""
from __future__ import annotations

import argparse
import json
import sys

from ..map import KeyframeMap


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "map-info", help="summarise a keyframe map and check its integrity",
        description=__doc__.splitlines()[0].split(": ", 1)[1])
    parser.add_argument("map", metavar="MAP.db", help="keyframe map file")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--skip-integrity", action="store_true",
                        help="skip PRAGMA integrity_check (it reads the whole file)")
    parser.set_defaults(func=run)
    return parser


def _format_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GB"


def _share(n: int, total: int, enables: str) -> str:
    if total == 0:
        return "-"
    return f"{n} of {total} keyframes" + (f" ({enables})" if n else "")


def format_text(info: dict) -> str:
    bbox = info["bbox"]
    if bbox is None:
        bounds = "(no keyframes)"
    else:
        bounds = "  ".join(f"{axis} [{lo:.2f}, {hi:.2f}]"
                           for axis, lo, hi in zip("xyz", bbox["min"], bbox["max"]))
    per_kf = info["bytes_per_keyframe"]
    size = _format_bytes(info["file_size_bytes"])
    if per_kf is not None:
        size += f" ({_format_bytes(per_kf)} per keyframe)"
    lines = [
        ("map", info["path"]),
        ("keyframes", info["keyframes"]),
        ("frame_id", info["frame_id"]),
        ("model fingerprint", info["model_fingerprint"]),
        ("schema version", info["schema_version"]),
        ("descriptors", f"n={info['descriptor_dim']}, global D={info['global_descriptor_dim'] or '-'}"),
        ("positions bbox (m)", bounds),
        ("intrinsics", _share(info["keyframes_with_intrinsics"], info["keyframes"],
                              "essential matrix and relative rotation at query time")),
        ("3-D points", _share(info["keyframes_with_3d_points"], info["keyframes"], "metric PnP poses")),
        ("created", info["created"]),
        ("updated", info["updated"]),
        ("file size", size),
        ("integrity", info["integrity"]),
    ]
    return "\n".join(f"{name + ':':<20}{value}" for name, value in lines)


def run(args: argparse.Namespace) -> int:
    with KeyframeMap.open(args.map, mode="r") as kf_map:
        info = kf_map.info(check_integrity=not args.skip_integrity)
    print(json.dumps(info, indent=2) if args.json else format_text(info))
    if info["integrity"] not in ("ok", "not checked"):
        print(f"dejavu-ros map-info: error: {args.map}: integrity check failed: {info['integrity']}",
              file=sys.stderr)
        return 1
    return 0
