"""Keypoint head on the DVF map: which keyframe pixels a query taken at night will find again.

Why: Shi-Tomasi picks intensity corners, and at night many of those are lamps or shadows that
the daytime keyframe does not share. The head scores every pixel of the (frozen) descriptor map by
*matchability* — the probability that the dense search of a night query lands on it — from the
descriptor itself and its distinctiveness (how unlike its neighbours it is, the peakiness measure
of SCFeat-style detectors). Keypoints are the local maxima of that score
(:func:`dejavu_ros.matching.keypoints.head_keypoints`).

It is trained on pixel-aligned webcams (the same point at the same pixel day and night, so the
correct match of every pixel is known exactly): ``dejavu_ros.training.keypoint_head``.

Weights are one safetensors file whose metadata names the backbone it was trained on
(features/head_file.py): a head only means something on the descriptor map it learned.
"""
from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import DejavuError
from .dvf import unit_channels
from .head_file import load_head_file, save_head_file

HEAD_NAME = "keypoint_head.safetensors"
FORMAT = "dejavu_ros.keypoint_head/1"


class KeypointHeadError(DejavuError):
    """A keypoint head file that cannot be used."""


def distinctiveness(dense: torch.Tensor, offset: int = 4, unit_length: bool = False) -> torch.Tensor:
    """B×1×H×W: 1 − the highest cosine similarity to the 8 neighbours ``offset`` px away
    (``unit_length``: the descriptors already are, so they are not normalised again).

    A descriptor that looks like its surroundings cannot be localised by a ratio test, whatever
    its contrast; this is the peakiness cue the head sees beside the descriptor itself.
    """
    if dense.dim() == 3:
        dense = dense[None]
    unit = dense if unit_length else unit_channels(dense)
    padded = F.pad(unit, (offset, offset, offset, offset), mode="replicate")
    h, w = unit.shape[-2:]
    best = torch.full_like(unit[:, :1], -1.0)
    for dy in (-offset, 0, offset):
        for dx in (-offset, 0, offset):
            if dx == 0 and dy == 0:
                continue
            shifted = padded[:, :, offset + dy: offset + dy + h, offset + dx: offset + dx + w]
            best = torch.maximum(best, (unit * shifted).sum(dim=1, keepdim=True))
    return 1.0 - best


class KeypointHead(nn.Module):
    """Descriptor map (B×n×H×W) → matchability logits (B×1×H×W); a few thousand parameters."""

    def __init__(self, descriptor_dim: int, hidden: int = 16, offset: int = 4):
        super().__init__()
        self.descriptor_dim, self.hidden, self.offset = int(descriptor_dim), int(hidden), int(offset)
        self.net = nn.Sequential(
            nn.Conv2d(self.descriptor_dim + 1, self.hidden, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(self.hidden, self.hidden, 3, padding=2, dilation=2), nn.ReLU(inplace=True),
            nn.Conv2d(self.hidden, 1, 1))

    def forward(self, dense: torch.Tensor) -> torch.Tensor:
        if dense.dim() == 3:
            dense = dense[None]
        if dense.shape[1] != self.descriptor_dim:
            raise KeypointHeadError(f"keypoint head expects {self.descriptor_dim}-dimensional descriptors, "
                                    f"the map has {dense.shape[1]}")
        unit = unit_channels(dense)
        return self.net(torch.cat([unit, distinctiveness(unit, self.offset, unit_length=True)], dim=1))

    @torch.no_grad()
    def score(self, dense: torch.Tensor) -> torch.Tensor:
        """H×W matchability in [0, 1] of one n×H×W map."""
        return torch.sigmoid(self(dense.float()))[0, 0]


def save_head(head: KeypointHead, path: str | Path, backbone_fingerprint: str, info: dict | None = None) -> None:
    save_head_file(head, path, FORMAT, {"descriptor_dim": head.descriptor_dim, "hidden": head.hidden,
                                        "offset": head.offset}, backbone_fingerprint, info)


def load_head(path: str | Path) -> tuple[KeypointHead, dict]:
    """(head in eval mode, metadata) from a safetensors file; a clear error for anything else."""
    return load_head_file(path, FORMAT, KeypointHead, KeypointHeadError, "keypoint head")


@lru_cache(maxsize=4)
def _load_cached(path: str) -> tuple[KeypointHead, dict]:
    return load_head(path)


def cached_head(path: str) -> KeypointHead:
    """The head at ``path`` (or the shipped one for ""), loaded once per process."""
    return _load_cached(str(resolve_head_path(path)))[0]


def resolve_head_path(path: str | Path | None) -> Path:
    if path:
        return Path(path)
    from ..resources import models_dir

    return models_dir() / HEAD_NAME


def check_keypoint_head(cfg, extractor) -> None:
    """``cfg``: the matching settings; ``extractor``: the FeatureExtractor in use.

    Load the keypoint head now (a bad path fails at start, not at the first keyframe) and warn
    when it was trained on another DVF model: its scores only mean something on that map. The
    file is read once per process, and the check is made once per head and model. A head made for
    another descriptor size is an error for ``matching.keypoints: dvf_head``; for ``matching.refine``
    only a warning (keyframes are then mapped without head keypoints, :func:`head_fits`)."""
    if cfg.keypoints == "dvf_head" or ("dvf_head" in cfg.refine and head_fits(cfg, extractor.descriptor_dim)):
        _check(str(resolve_head_path(cfg.keypoint_head)), extractor.descriptor_dim, extractor.fingerprint)


def head_fits(cfg, descriptor_dim: int) -> bool:
    """Does ``cfg.keypoint_head`` read ``descriptor_dim``-dimensional maps? Warns once per head and size
    when not (``matching.refine`` then maps keyframes without head keypoints)."""
    return _fits(str(resolve_head_path(cfg.keypoint_head)), int(descriptor_dim))


@lru_cache(maxsize=8)
def _fits(path: str, descriptor_dim: int) -> bool:
    head = _load_cached(path)[0]
    if head.descriptor_dim == descriptor_dim:
        return True
    warnings.warn(f"matching.refine: the keypoint head {path} reads {head.descriptor_dim}-dimensional descriptors, "
                  f"the model has {descriptor_dim}: keyframes are mapped without head keypoints (train a head for "
                  "this model with dejavu-ros train-keypoints)", stacklevel=3)
    return False


@lru_cache(maxsize=8)
def _check(path: str, descriptor_dim: int, fingerprint: str) -> None:
    head, meta = _load_cached(path)
    if head.descriptor_dim != descriptor_dim:
        raise KeypointHeadError(f"matching.keypoint_head {path}: made for {head.descriptor_dim}-dimensional "
                                f"descriptors, the model has {descriptor_dim}; train a head for this model "
                                "(dejavu-ros train-keypoints) or set matching.keypoints shi_tomasi and "
                                "matching.refine off")
    if meta.get("backbone_fingerprint") not in (None, fingerprint):
        warnings.warn(f"matching.keypoint_head was trained on DVF model {meta['backbone_fingerprint']}, the loaded "
                      f"model is {fingerprint}: keypoints may be poor (retrain it with dejavu-ros "
                      "train-keypoints, or set matching.keypoints shi_tomasi and matching.refine off)",
                      stacklevel=4)
