"""`dejavu-ros` entry point: each subcommand is one module in this folder.

A subcommand module defines ``add_parser(subparsers)`` (which registers its parser and sets
``func=run``) and ``run(args) -> int``. Modules are imported only when the command line names
them, so ``dejavu-ros similarity`` does not pay for importing rosbag tooling.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import DejavuError

#: command name -> module in dejavu_ros.cli
COMMANDS = {
    "demo": "demo",
    "similarity": "similarity",
    "import-checkpoint": "import_checkpoint",
    "build-map": "build_map",
    "relocalize": "relocalize",
    "map-info": "map_info",
    "convert-robotcar": "convert_robotcar",
    "make-manifest": "make_manifest",
    "train": "train",
    "evaluate": "evaluate",
}


def _load(name: str):
    return importlib.import_module(f"{__package__}.{COMMANDS[name]}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dejavu-ros", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        if only is not None and name != only:
            sub.add_parser(name, help=f"(run 'dejavu-ros {name} -h')")
            continue
        _load(name).add_parser(sub)
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
    except KeyboardInterrupt:
        print(f"dejavu-ros {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
