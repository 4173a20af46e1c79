"""`dejavu-ros`: relocalize a camera against a keyframe map across seasons and times of day, offline.

Build a map from a rosbag2 drive, relocalize another drive against it (results bag with the ROS
node's topics, per-frame report, recall against ground truth), inspect maps, train and evaluate the
Deja-Vu feature network. ``dejavu-ros demo`` runs the whole job on a generated street.

A subcommand module defines ``add_parser(subparsers)`` (which registers its parser and sets
``func=run``) and ``run(args) -> int``. Modules are imported only when the command line names
them, so ``dejavu-ros --help`` does not pay for torch, rosbags or OpenCV.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from ..errors import DejavuError

#: command name -> (module in dejavu_ros.cli, one-line help shown by ``dejavu-ros --help``)
COMMANDS = {
    "demo": ("demo", "generated day/night street: build a map, relocalize, report (the main job)"),
    "build-map": ("build_map", "build a keyframe map from a rosbag2 drive (or RobotCar Seasons)"),
    "relocalize": ("relocalize", "relocalize every frame of a bag against a map; results bag and report"),
    "map-info": ("map_info", "summarise a keyframe map and check its integrity"),
    "similarity": ("similarity", "contextual-similarity matrix of images (the authors' demo pipeline)"),
    "overlap": ("overlap", "how much of image A is visible in image B, and their relative scale"),
    "convert-robotcar": ("convert_robotcar", "convert a raw Oxford RobotCar run to rosbag2"),
    "make-manifest": ("make_manifest", "write a training/evaluation manifest for a known data set"),
    "train": ("train", "train DVF with the contextual triplet loss"),
    "train-keypoints": ("train_keypoints", "train the DVF keypoint head on day/night webcams"),
    "train-overlap": ("train_overlap", "train the DVF overlap (box) head on crops of webcams"),
    "evaluate": ("evaluate", "ROC AUC / Recall@K of DVF and baselines on a manifest"),
    "export-onnx": ("export_onnx", "export the DVF network to ONNX (dynamic image size)"),
    "import-checkpoint": ("import_checkpoint", "convert an authors' DVF checkpoint to safetensors"),
}


def _available() -> dict[str, tuple[str, str]]:
    """The commands whose module exists in this installation."""
    here = os.path.dirname(__file__)
    return {name: spec for name, spec in COMMANDS.items() if os.path.isfile(os.path.join(here, spec[0] + ".py"))}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    doc = __doc__.split("\n\nA subcommand module")[0]
    parser = argparse.ArgumentParser(prog="dejavu-ros", description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module, help_text) in _available().items():
        if name != only:
            sub.add_parser(name, help=help_text)
            continue
        importlib.import_module(f"{__package__}.{module}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    only = argv[0] if argv and argv[0] in COMMANDS else None
    parser = build_parser(only)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except DejavuError as exc:
        print(f"dejavu-ros {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `dejavu-ros map-info MAP --json | head`: the reader left, that is fine
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(f"dejavu-ros {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
