"""Small pieces several subcommands share: parsing sizes, the model flags, the config flags."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..features.config import FeatureConfig


def parse_size(text: str) -> tuple[int, int]:
    """'WxH' → (w, h)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return w, h


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--model`` / ``--device`` as the schema declares ``features.model`` / ``features.device``."""
    from .. import schema

    schema.add_flag(parser, "--model", FeatureConfig, "model")
    schema.add_flag(parser, "--device", FeatureConfig, "device")


def load_extractor(args: argparse.Namespace):
    """The DVF extractor the ``--model`` / ``--device`` flags name."""
    from .. import schema
    from ..features.extractor import FeatureExtractor

    values = schema.flag_values(args)
    return FeatureExtractor.from_config(FeatureConfig(model=values["model"], device=values["device"]))


def add_config_arguments(parser: argparse.ArgumentParser, sections: list[str]) -> None:
    """--params YAML, --model, --device and a --section.name flag for every schema field of ``sections``."""
    from .. import schema
    from ..config import DejavuConfig

    parser.add_argument("--params", type=Path, help="parameters YAML (config/relocalize.yaml layout)")
    add_model_arguments(parser)
    schema.add_arguments(parser, DejavuConfig, sections=sections)


def config_from_args(args: argparse.Namespace, **overrides):
    """Defaults ← --params YAML ← --section.name flags ← --model/--device ← ``overrides`` (dotted names)."""
    from .. import config, schema

    values = schema.overrides_from_args(args)
    labels = schema.labels_from_args(args)
    for flag in ("model", "device"):
        given = getattr(args, f"flag__{flag}", None)
        if given is not None:
            values[f"features.{flag}"], labels[f"features.{flag}"] = given, f"--{flag}"
    values.update({k.replace("__", "."): v for k, v in overrides.items()})
    return config.resolve(args.params, values, labels)
