"""Settings of weakly supervised DVF training (``config/train.yaml``, ``dejavu-ros train`` flags).

Training is an offline tool, not part of the node, so this schema stands on its own instead of
joining :class:`dejavu_ros.config.DejavuConfig`; it uses the same ``param`` declarations, so YAML,
flags and validation come from one place.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .. import schema
from ..features.dvf import COLOURS, SCALINGS
from ..schema import ConfigError, param, param_like
from ..similarity.config import SimilarityConfig


@dataclass
class ModelSection:
    variant: str = param("light", "Network size: light (CPU default, 0.46 M parameters), mid (1.2 M) or full "
                         "(the paper's widths, 3.3 M)", choices=("light", "mid", "full"))
    descriptor_dim: int = param(10, "Descriptor channels n (paper: 10)", low=1, high=256)
    init: str = param("", "Start from these weights (.safetensors) instead of random (ignored with --resume)")
    scaling: str = param("max", "Input convention the model is trained with and keeps: max (the authors': divide by "
                         "the image maximum), exposure (max, then a gamma to a mid-grey mean), fixed (/255); "
                         "also applied to --model.init weights (ignored with --resume)",
                         choices=SCALINGS)
    colour: str = param("rgb", "Colour convention the model is trained with and keeps: rgb, or grey (the luma in "
                        "all three channels: a night's lamp colours are not the scene's); also applied to "
                        "--model.init weights (ignored with --resume)", choices=COLOURS)


@dataclass
class DataSection:
    crop_height: int = param(128, "Training crop height in px (≥ 128, DVF's minimum side)", low=128, high=2048)
    crop_width: int = param(192, "Training crop width in px (≥ 128)", low=128, high=4096)
    min_height: int = param(128, "Images are first resized so their height is at least this (Nordland 32 → 128)",
                            low=128, high=2048)
    balance: str = param("sequence", "Anchor draw: 'sequence' = each sequence equally often, 'image' = uniform",
                         choices=("sequence", "image"))
    positive_radius: float = param(0.0, "Positive = same place within this distance (places or metres)",
                                   low=0.0, high=1e6)
    negative_min_places: int = param(10, "Negative on the same route: at least this many places away", low=1,
                                     high=1_000_000)
    negative_min_metres: float = param(25.0, "Negative with x/y positions: at least this far away", low=0.0, high=1e7)
    negative_same_sequence: float = param(0.5, "Probability of drawing the negative from the anchor's sequence",
                                          low=0.0, high=1.0)
    consecutive_max_gap: int = param(2, "Second frame of a role: next place within this many steps; "
                                     "otherwise the same image re-augmented", low=1, high=1000)
    epoch_size: int = param(2000, "Triplet samples per epoch (anchors are drawn at random)", low=1, high=10_000_000)


@dataclass
class AugmentSection:
    enabled: bool = param(True, "Photometric and crop augmentation of every role independently")
    gamma: list[float] = param([0.6, 1.6], "Gamma range (applied with probability 0.5)")
    darken: list[float] = param([0.25, 1.0], "Brightness scale range (applied with probability 0.3)")
    noise_std: float = param(0.02, "Max Gaussian noise std (image in [0,1]; probability 0.3)", low=0.0, high=0.5)
    colour_temperature: float = param(0.15, "Max red/blue gain shift (probability 0.5)", low=0.0, high=0.9)
    blur_sigma: float = param(1.2, "Max Gaussian blur sigma in px (probability 0.2)", low=0.0, high=10.0)
    scale_jitter: float = param(0.1, "Random extra upscaling before the crop, up to this fraction", low=0.0,
                                high=1.0)
    low_light: float = param(0.0, "Probability of a simulated night exposure: 3-20 percent of the light, shot and read "
                             "noise, 8-bit quantisation, a few lamp glows", low=0.0, high=1.0)


@dataclass
class LossSection:
    margin: float = param(0.5, "Triplet margin m of max(CX(A,N) − CX(A,P) + m, 0)", low=0.0, high=10.0)
    alpha: float = param(0.2, "Weight of the same-season consistency triplets (paper's best: 0.2)", low=0.0,
                         high=1.0)
    cx_stride: int = param_like(SimilarityConfig, "grid_stride")
    cx_offset: float = param_like(SimilarityConfig, "offset")
    cx_bandwidth: float = param_like(SimilarityConfig, "bandwidth")
    beta: float = param(0.0, "Weight of the pixel-level hardest-contrastive term on pixel-aligned pairs", low=0.0,
                        high=100.0)
    spatial_points: int = param(256, "Pixels sampled per aligned pair for the spatial term", low=8, high=65536)
    spatial_radius: float = param(8.0, "Negatives must lie farther than this many px from the positive", low=0.0,
                                  high=1e4)
    spatial_pos_margin: float = param(0.1, "Positive descriptor distance below which no loss applies", low=0.0,
                                      high=2.0)
    spatial_neg_margin: float = param(1.0, "Hardest-negative descriptor distance above which no loss applies",
                                      low=0.0, high=2.0)
    spatial_trim: float = param(0.0, "Robust pixel term: ignore this fraction of each pair's sampled pixels whose "
                                "descriptors differ most (scene changes between the two frames: vehicles, "
                                "construction), so they are not forced to match", low=0.0, high=0.9)


@dataclass
class OptimSection:
    lr: float = param(1e-3, "SGD learning rate (paper: 1e-3)", low=0.0, high=10.0)
    momentum: float = param(0.9, "SGD momentum", low=0.0, high=0.999)
    weight_decay: float = param(0.0, "SGD weight decay", low=0.0, high=1.0)
    batch_size: int = param(2, "Triplet samples per step and process (each = 6 images)", low=1, high=1024)
    max_steps: int = param(0, "Stop after this many steps (0 = no limit)", low=0, high=100_000_000)
    max_epochs: int = param(160, "Stop after this many epochs (paper: 160)", low=1, high=100_000)
    grad_clip: float = param(5.0, "Clip the gradient norm to this (0 = off)", low=0.0, high=1e6)
    seed: int = param(0, "Seed of initialisation, sampling and augmentation", low=0, high=2**31 - 1)
    threads: int = param(0, "torch CPU threads per process (0 = torch's default)", low=0, high=1024)


@dataclass
class ValidationSection:
    every_steps: int = param(100, "Validate every this many steps (and at the end)", low=1, high=10_000_000)
    every_minutes: float = param(8.0, "…or when this much wall time passed since the last validation", low=0.0,
                                 high=1e6)
    max_images: int = param(160, "Cap on images per validation split (whole places kept, spread evenly; "
                            "frames spread evenly where a split has few places)", low=4, high=1_000_000)
    grid_max_side: int = param(16, "CX grid cap for validation (cost grows with its 4th power)", low=1, high=512)
    select: str = param("auc_cross", "Validation metric that picks best.safetensors: auc_cross / recall@1 "
                        "(mean over the splits) or rule (½ mean webcam night↔day AUC + ½ mean route R@1, "
                        "training/validation.py)", choices=("auc_cross", "recall@1", "rule"))
    checkpoint_minutes: float = param(5.0, "Save the latest weights at least this often", low=0.1, high=1e6)


@dataclass
class TrainConfig:
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    augment: AugmentSection = field(default_factory=AugmentSection)
    loss: LossSection = field(default_factory=LossSection)
    optim: OptimSection = field(default_factory=OptimSection)
    validation: ValidationSection = field(default_factory=ValidationSection)


def load_train_config(path: str | Path | None = None, overrides: dict | None = None) -> TrainConfig:
    """Defaults ← YAML (nested ``section: {name: value}``) ← flag overrides, validated."""
    cfg = TrainConfig()
    if path:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            raise ConfigError(f"training config not found: {path}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
        try:
            cfg = schema.apply_flat(cfg, schema.flatten_nested(data))
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    if overrides:
        cfg = schema.apply_flat(cfg, overrides)
    cfg = schema.validate(cfg)
    for name, pair in (("augment.gamma", cfg.augment.gamma), ("augment.darken", cfg.augment.darken)):
        if len(pair) != 2 or not 0 < float(pair[0]) <= float(pair[1]):
            raise ConfigError(f"parameter '{name}': expected [low, high] with 0 < low ≤ high, got {pair}")
    return cfg
