"""Small pieces several subcommands share: reading images, parsing sizes, loading the model."""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from ..features.config import FeatureConfig
from ..features.extractor import FeatureExtractor
from .errors import CliError


def read_rgb(path: str | Path) -> np.ndarray:
    """An image file as H×W×3 uint8 RGB; a clear error when it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise CliError(f"image not found: {path}")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise CliError(f"cannot read image (not an image or unsupported format): {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


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
    parser.add_argument("--model", default="", help="DVF weights (.safetensors); default: the shipped model")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")


def load_extractor(args: argparse.Namespace) -> FeatureExtractor:
    return FeatureExtractor.from_config(FeatureConfig(model=args.model, device=args.device))


def add_config_arguments(parser: argparse.ArgumentParser, sections: list[str]) -> None:
    """--params YAML, --model, --device and a --section.name flag for every schema field of ``sections``."""
    from .. import schema
    from ..config import DejavuConfig

    parser.add_argument("--params", type=Path, help="parameters YAML (config/relocalize.yaml layout)")
    parser.add_argument("--model", default=None, help="DVF weights; default: the shipped model")
    parser.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N")
    schema.add_arguments(parser, DejavuConfig, sections=sections)


def config_from_args(args: argparse.Namespace, **overrides):
    """Defaults ← --params YAML ← --section.name flags ← --model/--device ← ``overrides`` (dotted names)."""
    from .. import config, schema

    values = schema.overrides_from_args(args)
    if args.model is not None:
        values["features.model"] = args.model
    if args.device is not None:
        values["features.device"] = args.device
    values.update({k.replace("__", "."): v for k, v in overrides.items()})
    return config.resolve(args.params, values)
