"""The ``--set NAME=VALUE`` flag the benchmark scripts share: one parameter of the configuration
schema per flag, as the command line's own flags, so an A/B is the same command with one override."""
from __future__ import annotations

import argparse

from dejavu_ros.config import DejavuConfig
from dejavu_ros.schema import ConfigError, apply_flat


def add_set_flag(parser: argparse.ArgumentParser, example: str = "engine.shortlist_k=20") -> None:
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help=f"override one parameter of the schema (repeatable), e.g. {example}")


def config_from_sets(parser: argparse.ArgumentParser, sets: list[str]) -> DejavuConfig:
    """The default configuration with the ``--set`` overrides; a bad one ends the script with its message."""
    if any("=" not in item for item in sets):
        parser.error("--set takes NAME=VALUE")
    try:
        return apply_flat(DejavuConfig(), dict(item.split("=", 1) for item in sets))
    except ConfigError as err:  # an unknown name or a bad value
        parser.error(str(err))
