"""Shared synthetic data for the training / evaluation tests (no tests here): textured places under lighting changes."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from dejavu_ros.features.dvf import DVF, DVFConfig
from dejavu_ros.datasets.manifest import ImageRecord, write_manifest

TINY = dict(descriptor_dim=4, stem_width=8, raw_width=8, deep_width=8, spp_width=4, decoder_width=8,
            blocks=[1, 1, 1, 1])


def tiny_model(seed: int = 0) -> DVF:
    import torch

    torch.manual_seed(seed)
    return DVF(DVFConfig(**TINY))


def place_texture(place: int, size: tuple[int, int] = (128, 160)) -> np.ndarray:
    """A repeatable random-blob texture per place (H×W×3 uint8)."""
    rng = np.random.default_rng(1000 + place)
    small = rng.integers(0, 256, (size[0] // 16, size[1] // 16, 3)).astype(np.uint8)
    return cv2.resize(small, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)


def condition_of(image: np.ndarray, condition: str) -> np.ndarray:
    """'night' = dark and blue-shifted; any other condition = the texture as is."""
    if condition != "night":
        return image
    out = image.astype(np.float32) * np.array([0.25, 0.3, 0.45])
    return np.clip(out, 0, 255).astype(np.uint8)


def write_route(folder: Path, places: int = 12, conditions=("day", "night"), size=(128, 160),
                sequence: str = "route", aligned: bool = False, place_names=None) -> list[ImageRecord]:
    """Images folder/<cond>/<place>.png and their records."""
    records = []
    for cond in conditions:
        (folder / cond).mkdir(parents=True, exist_ok=True)
        for p in range(places):
            path = folder / cond / f"{p:04d}.png"
            cv2.imwrite(str(path), cv2.cvtColor(condition_of(place_texture(p, size), cond), cv2.COLOR_RGB2BGR))
            name = place_names[p] if place_names else str(p)
            records.append(ImageRecord(path=str(path), place=name, condition=cond, sequence=sequence,
                                       aligned=aligned))
    return records


def write_route_manifest(folder: Path, name: str = "m.csv", **kwargs) -> Path:
    return write_manifest(write_route(folder, **kwargs), folder / name)
