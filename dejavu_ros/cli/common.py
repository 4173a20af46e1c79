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
