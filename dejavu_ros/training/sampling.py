"""Triplet sampling (paper §3.2): anchor, positive and negative, each as two consecutive frames.

A sample is six images in the order of :data:`ROLES`:

* anchor a0, a1 — a place under condition c (a1 = the next frame along the route),
* positive p0, p1 — the same place under another condition,
* negative n0, n1 — another place at least ``negative_min_places`` / ``negative_min_metres`` away
  (or any place of another sequence / another categorical location), any condition.

The loss forms cross-season triplets (a0,p0,n0), (a1,p1,n1) and the same-season consistency triplet
(n0,n1,a0). Where a sequence has no consecutive frames (fixed webcams, GRIEF locations) the second
frame is the same image with its own augmentation. Pixel-aligned places (``aligned``) share one crop
window across anchor and positive so that pixel (x, y) is the same point in both.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from .augment import crop_window, fit_scale, photometric, resize, scale_input
from .config import TrainConfig
from ..datasets.manifest import ImageRecord, ManifestError, load_record, place_distance

ROLES = ("a0", "a1", "p0", "p1", "n0", "n1")


@dataclass(frozen=True)
class TripletIndices:
    """Record indices of one sample, in :data:`ROLES` order, and whether a/p are pixel-aligned."""

    roles: tuple[int, int, int, int, int, int]
    aligned: bool


class TripletSampler:
    """Draws :class:`TripletIndices` from a list of records following the rules above."""

    def __init__(self, records: list[ImageRecord], cfg: TrainConfig) -> None:
        self.records = records
        self.cfg = cfg.data
        self._by_place: dict[tuple[str, str], list[int]] = {}
        self._by_frame: dict[tuple[str, str, int], int] = {}
        self._by_sequence: dict[str, list[int]] = {}
        for i, r in enumerate(records):
            self._by_place.setdefault((r.sequence, r.place), []).append(i)
            self._by_sequence.setdefault(r.sequence, []).append(i)
            if r.place_index is not None:
                self._by_frame.setdefault((r.sequence, r.condition, r.place_index), i)
        self.anchors = [i for i in range(len(records)) if self._positives(i)]
        if not self.anchors:
            raise ManifestError("no image has the same place under another condition: "
                                "training needs at least two conditions of one place")
        self._anchors_by_sequence: dict[str, list[int]] = {}
        for i in self.anchors:
            self._anchors_by_sequence.setdefault(records[i].sequence, []).append(i)
        if not any(self._negatives(i, same_sequence=False) for i in self.anchors[:1]):
            raise ManifestError("no negative place exists (all images show places closer than "
                                "data.negative_min_places / data.negative_min_metres)")

    # -- candidate sets -------------------------------------------------------------------------------

    def _positives(self, i: int) -> list[int]:
        r = self.records[i]
        radius = self.cfg.positive_radius
        if radius <= 0:
            pool = self._by_place.get((r.sequence, r.place), [])
        else:
            pool = [j for j in self._by_sequence[r.sequence] if place_distance(r, self.records[j]) <= radius]
        return [j for j in pool if self.records[j].condition != r.condition]

    def _is_far(self, a: ImageRecord, b: ImageRecord) -> bool:
        d = place_distance(a, b)
        if math.isinf(d):
            return True
        if a.has_position and b.has_position:
            return d >= self.cfg.negative_min_metres
        if a.place_index is not None and b.place_index is not None:
            return d >= self.cfg.negative_min_places
        return False

    def _negatives(self, i: int, same_sequence: bool) -> list[int]:
        r = self.records[i]
        pool = self._by_sequence[r.sequence] if same_sequence else range(len(self.records))
        return [j for j in pool if self._is_far(r, self.records[j])]

    def next_frame(self, i: int) -> int:
        """The following frame of the same route and condition, else ``i`` itself."""
        r = self.records[i]
        if r.place_index is None:
            return i
        for step in range(1, self.cfg.consecutive_max_gap + 1):
            j = self._by_frame.get((r.sequence, r.condition, r.place_index + step))
            if j is not None:
                return j
        for step in range(1, self.cfg.consecutive_max_gap + 1):  # end of route: look backwards
            j = self._by_frame.get((r.sequence, r.condition, r.place_index - step))
            if j is not None:
                return j
        return i

    def _frame_like(self, anchor_next: int, positive: int) -> int:
        """p1: the positive's condition at the anchor's next place (falls back to p0)."""
        a1, p0 = self.records[anchor_next], self.records[positive]
        if a1.place_index is None:
            return positive
        return self._by_frame.get((p0.sequence, p0.condition, a1.place_index), positive)

    # -- drawing ---------------------------------------------------------------------------------------

    def draw_anchor(self, rng: np.random.Generator) -> int:
        if self.cfg.balance == "sequence":
            sequences = sorted(self._anchors_by_sequence)
            pool = self._anchors_by_sequence[sequences[int(rng.integers(len(sequences)))]]
            return pool[int(rng.integers(len(pool)))]
        return self.anchors[int(rng.integers(len(self.anchors)))]

    def draw(self, rng: np.random.Generator) -> TripletIndices:
        a0 = self.draw_anchor(rng)
        positives = self._positives(a0)
        p0 = positives[int(rng.integers(len(positives)))]
        negatives: list[int] = []
        if rng.random() < self.cfg.negative_same_sequence:
            negatives = self._negatives(a0, same_sequence=True)
        if not negatives:
            negatives = self._negatives(a0, same_sequence=False)
        if not negatives:
            raise ManifestError(f"{self.records[a0].path}: no negative place far enough from this anchor")
        n0 = negatives[int(rng.integers(len(negatives)))]
        a1 = self.next_frame(a0)
        p1 = self._frame_like(a1, p0)
        n1 = self.next_frame(n0)
        aligned = self.records[a0].aligned and self.records[p0].aligned and a1 == a0 and p1 == p0
        return TripletIndices((a0, a1, p0, p1, n0, n1), aligned)


class TripletDataset(Dataset):
    """``epoch_size`` random samples; item k of epoch e is reproducible from (seed, e, k).

    Returns ``{"images": 6×3×H×W float32, "aligned": bool tensor}``, images already in the model's
    input convention (``scaling``, ``colour``), so the trainer only stacks and forwards them.
    """

    def __init__(self, records: list[ImageRecord], cfg: TrainConfig, scaling: str = "max",
                 colour: str = "rgb") -> None:
        self.cfg = cfg
        self.sampler = TripletSampler(records, cfg)
        self.records = records
        self.scaling, self.colour = scaling, colour
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.cfg.data.epoch_size

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.cfg.optim.seed, self.epoch, index])
        sample = self.sampler.draw(rng)
        images = self.render(sample, rng)
        return {"images": torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous(),
                "aligned": torch.tensor(sample.aligned)}

    def render(self, sample: TripletIndices, rng: np.random.Generator) -> list[np.ndarray]:
        """Load, rescale, crop and augment the six images (shared crop for aligned a/p)."""
        data, aug = self.cfg.data, self.cfg.augment
        crop = (data.crop_height, data.crop_width)
        jitter = 1.0 + float(rng.uniform(0.0, aug.scale_jitter)) if aug.enabled else 1.0
        shared_window = None
        out = []
        for role, idx in zip(ROLES, sample.roles):
            image = load_record(self.records[idx])
            extra = jitter
            if aug.enabled and not sample.aligned:  # unaligned roles get their own zoom
                extra = 1.0 + float(rng.uniform(0.0, aug.scale_jitter))
            image = resize(image, fit_scale(image.shape[0], image.shape[1], data.min_height, crop) * extra)
            if sample.aligned and role in ("a0", "a1", "p0", "p1"):
                if shared_window is None:
                    shared_window = crop_window(image.shape[:2], crop, rng)
                y, x = shared_window
            else:
                y, x = crop_window(image.shape[:2], crop, rng)
            patch = image[y:y + crop[0], x:x + crop[1]]
            if patch.shape[:2] != crop:  # rounding at the border of a barely large image
                patch = cv2_pad(patch, crop)
            out.append(scale_input(photometric(patch, aug, rng), self.scaling, self.colour).astype(np.float32))
        return out


def cv2_pad(patch: np.ndarray, crop: tuple[int, int]) -> np.ndarray:
    h, w = patch.shape[:2]
    return np.pad(patch, ((0, max(0, crop[0] - h)), (0, max(0, crop[1] - w)), (0, 0)), mode="edge")[:crop[0], :crop[1]]
