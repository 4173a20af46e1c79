"""The Deja-Vu feature network (DVF): a residual FCN with spatial pyramid pooling.

Layout (Spencer et al., CVPR 2020): a stride-2 stem whose output is the decoder's skip
connection, four residual stages (the second halves the resolution again), a pyramid of
average pools over the deepest map, and a light decoder that returns one n-dim descriptor per
input pixel. With the default widths and depths the network holds 3,339,552 + 32·n parameters.

The width/depth knobs of :class:`DVFConfig` make lighter variants for CPU inference; they are
saved with the weights so a checkpoint always rebuilds the network it was trained as.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

#: smallest input side: the 1/4-resolution map must hold the 32×32 pooling window
MIN_SIDE = 128
#: pooling windows of the pyramid, largest first (the order of ``DVF.spp``)
SPP_KERNELS = (32, 16, 8, 4)
#: input conventions a model can be trained with: "max" (the authors'), "exposure", "fixed"
SCALINGS = ("max", "exposure", "fixed")
#: colour conventions: "rgb", or "grey" (the luma in all three channels: at night the lamps' colour cast is
#: not the scene's, and a model fed grey cannot lean on it)
COLOURS = ("rgb", "grey")


@dataclass
class DVFConfig:
    """Architecture and input convention of one DVF model (stored in every checkpoint)."""

    descriptor_dim: int = 10
    normalize: bool = True  # L2-normalise descriptors over channels
    scaling: str = "max"  # one of SCALINGS (features.preprocess.to_tensor says what each does)
    colour: str = "rgb"  # one of COLOURS
    stem_width: int = 32
    raw_width: int = 64  # layer2 output, concatenated as "raw"
    deep_width: int = 128  # layer3/layer4 output, concatenated as "deep"
    spp_width: int = 32
    decoder_width: int = 128
    blocks: list[int] = field(default_factory=lambda: [3, 16, 3, 3])

    def __post_init__(self) -> None:
        self.blocks = [int(b) for b in self.blocks]
        if len(self.blocks) != 4 or min(self.blocks) < 1:
            raise ValueError(f"DVFConfig.blocks must be 4 positive counts, got {self.blocks}")
        if self.descriptor_dim < 1:
            raise ValueError(f"DVFConfig.descriptor_dim must be ≥ 1, got {self.descriptor_dim}")
        if self.scaling not in SCALINGS:
            raise ValueError(f"DVFConfig.scaling must be one of {SCALINGS}, got {self.scaling!r}")
        if self.colour not in COLOURS:
            raise ValueError(f"DVFConfig.colour must be one of {COLOURS}, got {self.colour!r}")

    def to_dict(self) -> dict[str, Any]:
        """The config as stored in a checkpoint. ``colour`` came after RGB models had shipped and been
        fingerprinted by maps and trust calibrations, so an RGB config is written without it (the
        default on reading): those files and fingerprints stay what they were."""
        data = asdict(self)
        if data["colour"] == "rgb":
            del data["colour"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DVFConfig":
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown DVFConfig field(s): {', '.join(unknown)}")
        return cls(**data)

    @classmethod
    def mid(cls, descriptor_dim: int = 10) -> "DVFConfig":
        """Between the two: three quarters of the paper's widths, half its layer2 depth."""
        return cls(descriptor_dim=descriptor_dim, stem_width=24, raw_width=48, deep_width=96,
                   spp_width=24, decoder_width=96, blocks=[2, 8, 2, 2])

    @classmethod
    def light(cls, descriptor_dim: int = 10) -> "DVFConfig":
        """The CPU variant shipped as the default model: half width, shallow layer2."""
        return cls(descriptor_dim=descriptor_dim, stem_width=16, raw_width=32, deep_width=64,
                   spp_width=16, decoder_width=64, blocks=[2, 4, 2, 2])


class ConvBlock(nn.Sequential):
    """Conv (no bias) → BatchNorm → optional ReLU; a dilation > 1 replaces the padding."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, dilation: int = 1,
                 relu: bool = True) -> None:
        padding = dilation if dilation > 1 else kernel // 2
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, dilation, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        if relu:
            self.relu = nn.ReLU(inplace=True)


class ResidualBlock(nn.Module):
    """Two 3×3 ConvBlocks plus a shortcut; no ReLU after the addition (as the authors)."""

    def __init__(self, cin: int, cout: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = ConvBlock(cin, cout, 3, stride, dilation, relu=True)
        self.conv2 = ConvBlock(cout, cout, 3, 1, dilation, relu=False)
        self.shortcut = (ConvBlock(cin, cout, 1, stride, relu=False)
                         if stride != 1 or cin != cout else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.shortcut is None else self.shortcut(x)
        return self.conv2(self.conv1(x)) + identity


def _stage(cin: int, cout: int, count: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    blocks = [ResidualBlock(cin, cout, stride, dilation)]
    blocks += [ResidualBlock(cout, cout, 1, dilation) for _ in range(count - 1)]
    return nn.Sequential(*blocks)


def unit_channels(x: torch.Tensor, dim: int = 1, eps: float = 1e-12) -> torch.Tensor:
    """``x / max(‖x‖, eps)`` along ``dim``, as ``F.normalize`` (within 1e-7): on the CPU torch computes
    that norm of a B×n×H×W map pixel by pixel over strided channels, 7× slower than this sum of
    squares, which walks whole channel planes (10 ms of a 75 ms DVF forward at 320×240)."""
    return x / (x * x).sum(dim, keepdim=True).clamp_min(eps * eps).sqrt()


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


class DVF(nn.Module):
    """Dense descriptors: B×3×H×W image in [0, 1] → B×n×H×W (unit length when ``normalize``)."""

    def __init__(self, cfg: DVFConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or DVFConfig()
        w = cfg.stem_width
        self.stem = nn.Sequential(ConvBlock(3, w, 3, stride=2), ConvBlock(w, w, 3), ConvBlock(w, w, 3))
        self.layer1 = _stage(w, w, cfg.blocks[0])
        self.layer2 = _stage(w, cfg.raw_width, cfg.blocks[1], stride=2)
        self.layer3 = _stage(cfg.raw_width, cfg.deep_width, cfg.blocks[2])
        self.layer4 = _stage(cfg.deep_width, cfg.deep_width, cfg.blocks[3], dilation=2)
        self.spp = nn.ModuleList(ConvBlock(cfg.deep_width, cfg.spp_width, 1) for _ in SPP_KERNELS)
        concat = cfg.raw_width + cfg.deep_width + len(SPP_KERNELS) * cfg.spp_width
        self.fuse = ConvBlock(concat, cfg.decoder_width, 3)
        self.reduce = nn.Conv2d(cfg.decoder_width, w, 1, bias=False)
        self.head = nn.Conv2d(w, cfg.descriptor_dim, 1, bias=False)

    @property
    def descriptor_dim(self) -> int:
        return self.cfg.descriptor_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"DVF expects a B×3×H×W batch, got shape {tuple(x.shape)}")
        height, width = x.shape[-2:]
        if min(height, width) < MIN_SIDE:
            raise ValueError(f"DVF needs both image sides ≥ {MIN_SIDE} px, got {width}×{height} "
                             f"(use features.preprocess.pad_to_min_side)")
        skip = self.stem(x)  # H/2
        raw = self.layer2(self.layer1(skip))  # H/4
        deep = self.layer4(self.layer3(raw))
        quarter = deep.shape[-2:]
        # concatenation order as the authors: raw, deep, then pools from the finest (4) to the coarsest (32)
        pooled = [_resize(branch(F.avg_pool2d(deep, k, stride=k)), quarter)
                  for k, branch in zip(SPP_KERNELS, self.spp)]
        features = torch.cat([raw, deep, *reversed(pooled)], dim=1)
        features = self.reduce(self.fuse(_resize(features, skip.shape[-2:]))) + skip
        # the head is a 1×1 convolution without bias, so it commutes with the bilinear resize: applied
        # first, it runs at half resolution and the full-resolution resize moves n channels, not stem_width
        out = _resize(self.head(features), (height, width))
        return unit_channels(out) if self.cfg.normalize else out


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
