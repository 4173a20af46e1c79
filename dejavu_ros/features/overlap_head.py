"""Box-embedding head on the DVF map: how much of one view another shows, and at what scale.

An image is embedded as a box in d dimensions (lower and upper corners; Rau et al., ECCV 2020). The
normalised surface overlap NSO(A→B) = vol(A ∩ B) / vol(A) is the fraction of A's surface visible in
B; it is asymmetric: a zoom B into A sees all of itself in A (NSO(B→A) = 1) but a quarter of A
(NSO(A→B) = ¼ for 2×). The relative scale follows from the pair, as in the paper:
scale = √(NSO(B→A) / NSO(A→B)) = √(vol A / vol B) — how much larger B shows things than A.

Input is the CX grid (the n×h×w pooled DVF map the engine already holds for every keyframe), so the
boxes of a whole map come from tensors in memory, in one batch, and no map format changes. The
intersection uses a softplus edge (temperature ``temperature``) so that disjoint boxes still have a
gradient. Trained on crops and zooms of pixel-aligned webcams by day and night, where the overlap and
scale of every pair are known exactly: ``dejavu_ros.training.overlap_head``.
"""
from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import DejavuError
from .head_file import load_head_file, save_head_file

HEAD_NAME = "overlap_head.safetensors"
FORMAT = "dejavu_ros.overlap_head/1"


class OverlapHeadError(DejavuError):
    """An overlap head file that cannot be used, or input it cannot embed."""


# --- box geometry (functional) -------------------------------------------------------------

def log_side_lengths(lo: torch.Tensor, hi: torch.Tensor, temperature: float) -> torch.Tensor:
    """Log of the soft side lengths (…×d): ``hi − lo`` where positive, a small positive value where the
    box is empty — T·softplus((hi − lo)/T), whose log is taken as z + log T far below zero, where
    softplus underflows (the gradient then stays finite for disjoint boxes)."""
    z = (hi - lo) / temperature
    safe = torch.log(F.softplus(z.clamp(min=-15.0)))
    return math.log(temperature) + torch.where(z < -15.0, z, safe)


def log_volume(lo: torch.Tensor, hi: torch.Tensor, temperature: float) -> torch.Tensor:
    return log_side_lengths(lo, hi, temperature).sum(-1)


def box_overlap(lo_a: torch.Tensor, hi_a: torch.Tensor, lo_b: torch.Tensor, hi_b: torch.Tensor,
                temperature: float) -> torch.Tensor:
    """NSO(A→B) = vol(A ∩ B) / vol(A) in [0, 1] (broadcast over leading dimensions)."""
    inter = log_volume(torch.maximum(lo_a, lo_b), torch.minimum(hi_a, hi_b), temperature)
    return torch.exp(inter - log_volume(lo_a, hi_a, temperature)).clamp(max=1.0)


def box_scale(lo_a: torch.Tensor, hi_a: torch.Tensor, lo_b: torch.Tensor, hi_b: torch.Tensor,
              temperature: float) -> torch.Tensor:
    """How much larger B shows things than A: √(NSO(B→A) / NSO(A→B)) = √(vol A / vol B)."""
    return torch.exp(0.5 * (log_volume(lo_a, hi_a, temperature) - log_volume(lo_b, hi_b, temperature)))


# --- the head ------------------------------------------------------------------------------

class BoxHead(nn.Module):
    """CX grid (B×n×h×w, any h, w) → box (lower, upper) corners, each B×dims."""

    def __init__(self, descriptor_dim: int, dims: int = 8, hidden: int = 48, temperature: float = 0.05):
        super().__init__()
        self.descriptor_dim, self.dims, self.hidden = int(descriptor_dim), int(dims), int(hidden)
        self.temperature = float(temperature)
        h = self.hidden
        self.conv = nn.Sequential(
            nn.Conv2d(self.descriptor_dim, h, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(h, h, 3, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(h, 2 * h, 3, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d((3, 4)))
        self.out = nn.Sequential(nn.Flatten(), nn.Linear(2 * h * 12, 2 * h), nn.ReLU(inplace=True),
                                 nn.Linear(2 * h, 2 * self.dims))

    @property
    def config(self) -> dict:
        return {"descriptor_dim": self.descriptor_dim, "dims": self.dims, "hidden": self.hidden,
                "temperature": self.temperature}

    def forward(self, grid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if grid.dim() == 3:
            grid = grid[None]
        if grid.dim() != 4 or grid.shape[1] != self.descriptor_dim:
            raise OverlapHeadError(f"overlap head expects {self.descriptor_dim}-channel CX grids, got shape "
                                   f"{tuple(grid.shape)}")
        z = self.out(self.conv(F.normalize(grid.float(), dim=1)))
        centre, log_half = z[:, : self.dims], z[:, self.dims:]
        half = torch.exp(log_half.clamp(-6.0, 3.0))
        return centre - half, centre + half

    def overlap(self, box_a, box_b) -> torch.Tensor:
        return box_overlap(*box_a, *box_b, self.temperature)

    def scale(self, box_a, box_b) -> torch.Tensor:
        return box_scale(*box_a, *box_b, self.temperature)

    @torch.no_grad()
    def compare(self, grid_a: torch.Tensor, grid_b: torch.Tensor) -> dict[str, float]:
        """overlap_ab, overlap_ba and scale of one pair of CX grids."""
        a, b = self(grid_a), self(grid_b)
        return {"overlap_ab": float(self.overlap(a, b)[0]), "overlap_ba": float(self.overlap(b, a)[0]),
                "scale": float(self.scale(a, b)[0])}


def save_overlap_head(head: BoxHead, path: str | Path, backbone_fingerprint: str, info: dict | None = None) -> None:
    save_head_file(head, path, FORMAT, head.config, backbone_fingerprint, info)


def load_overlap_head(path: str | Path) -> tuple[BoxHead, dict]:
    """(head in eval mode, metadata) from a safetensors file; a clear error for anything else."""
    return load_head_file(path, FORMAT, BoxHead, OverlapHeadError, "overlap head")


def resolve_overlap_head_path(path: str | Path | None) -> Path:
    if path:
        return Path(path)
    from ..resources import models_dir

    return models_dir() / HEAD_NAME


@lru_cache(maxsize=4)
def _cached(path: str) -> tuple[BoxHead, dict]:
    return load_overlap_head(path)


def cached_overlap_head(path: str | Path | None, descriptor_dim: int) -> tuple[BoxHead, dict]:
    """The head at ``path`` (or the shipped one), read once per process, checked against the model."""
    head, meta = _cached(str(resolve_overlap_head_path(path)))
    if head.descriptor_dim != descriptor_dim:
        raise OverlapHeadError(f"overlap head {resolve_overlap_head_path(path)}: made for {head.descriptor_dim}-"
                               f"dimensional descriptors, the model has {descriptor_dim}")
    return head, meta
