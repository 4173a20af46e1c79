"""Absolute pose regression on frozen DVF maps against raw RGB (the paper's §4.3 / Table 2 test).

The question is whether the frozen dense features carry the camera's pose better than pixels do
when the test condition differs from the training one. So one small head is trained twice with
the same seed, batches and layer sizes: once on DVF maps, once on the image the network sees;
only a 1×1 input adapter differs (D versus 3 channels). Both inputs come from one
``extractor.prepare`` call, so the preprocessing (exposure scaling) is identical and any gap is
due to the features, not to a brighter input. The DVF maps are computed once per image.

Poses are ``N×7`` (x, y, z, qx, qy, qz, qw) when orientation is known, else ``N×P`` positions
only (no rotation error is reported then).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import DejavuError

#: maps and images are average-pooled by this before the head (240×320 → 30×40): one CPU thread trains it
POOL = 8
#: Nordland metres per place (as in scenarios.py); GRIEF images are halved to this size for DVF
NORDLAND_SPACING_M, GRIEF_SIZE = 10.0, (512, 192)


class PoseDataError(DejavuError, ValueError):
    """A pose-regression data set that cannot be trained or tested on; the message says why."""


@dataclass
class PoseData:
    """train images + poses; per test condition, images + poses. ``shift_scale`` > 0 marks data whose
    target is a horizontal image shift in pixels (GRIEF): training crops are then shifted at random
    and the target corrected, one working pixel being ``shift_scale`` target pixels."""

    train_images: list[np.ndarray]
    train_poses: np.ndarray
    test_images: dict[str, list[np.ndarray]]
    test_poses: dict[str, np.ndarray]
    unit: str = "m"
    note: str = ""
    shift_scale: float = 0.0

    def check(self) -> None:
        _check_set("train", self.train_images, self.train_poses)
        if not self.test_images or set(self.test_images) != set(self.test_poses):
            raise PoseDataError(f"test conditions {sorted(self.test_images)} and poses {sorted(self.test_poses)} differ"
                                " (need at least one)")
        for cond in self.test_images:
            _check_set(f"test {cond!r}", self.test_images[cond], self.test_poses[cond])
            if self.test_poses[cond].shape[1] != self.train_poses.shape[1]:
                raise PoseDataError(f"test {cond!r}: poses have {self.test_poses[cond].shape[1]} columns, "
                                    f"training poses {self.train_poses.shape[1]}")
        shapes = {im.shape for ims in [self.train_images, *self.test_images.values()] for im in ims}
        if len(shapes) != 1:
            raise PoseDataError(f"all images must share one size to be batched; got {sorted(shapes)}")


def _check_set(what: str, images: Sequence[np.ndarray], poses: np.ndarray) -> None:
    if len(images) == 0:
        raise PoseDataError(f"{what}: no images")
    poses = np.asarray(poses)
    if poses.ndim != 2 or len(poses) != len(images):
        raise PoseDataError(f"{what}: {len(images)} images but poses of shape {poses.shape} (need one row per image)")
    if not np.isfinite(poses).all():
        raise PoseDataError(f"{what}: poses contain NaN or Inf")
    if poses.shape[1] == 7 and (np.linalg.norm(poses[:, 3:], axis=1) < 1e-6).any():
        raise PoseDataError(f"{what}: a quaternion (columns 4-7) has zero length")
    if any(not isinstance(im, np.ndarray) or im.ndim != 3 or im.shape[2] != 3 for im in images):
        raise PoseDataError(f"{what}: images must be H×W×3 arrays")


# --- data sets ----------------------------------------------------------------------------------

def demo_street_data(length_m: float = 150.0, seed: int = 7, test_offset_m: float = 0.5, test_step_m: float = 3.0,
                     conditions: Sequence[str] = ("day", "night", "fog")) -> PoseData:
    """Day frames every 1 m for training; each condition at offset positions for testing (no test frame
    stands on a training one). The pose is the demo's odometry: x along the street, the fixed
    side-looking orientation (the renderer's ±1° roll is not ground truth, so rotation only checks
    that the head learned the constant)."""
    from ..demo.run import SIDE_LOOKING
    from ..demo.world import make_street, render

    street = make_street(length_m, seed)

    def traversal(xs: np.ndarray, cond: str, base: int):
        images = [render(street, float(x), cond, np.random.default_rng(base + i)) for i, x in enumerate(xs)]
        return images, np.array([[x, 0.0, 0.0, *SIDE_LOOKING] for x in xs])

    train = traversal(np.arange(0.0, length_m, 1.0), "day", 1000)
    tests = {c: traversal(np.arange(test_offset_m, length_m, test_step_m), c, 2000 + 100_000 * k)
             for k, c in enumerate(conditions)}
    return PoseData(train[0], train[1], {c: t[0] for c, t in tests.items()}, {c: t[1] for c, t in tests.items()},
                    unit="m", note=f"{length_m:g} m street, day every 1 m trains, {test_step_m:g} m steps from "
                    f"{test_offset_m:g} m test")


def nordland_data(root: Path, places: Sequence[int] = range(1, 1431), every: int = 2) -> PoseData:
    """Summer frames train, winter frames of the same places test; position = place × 10 m (1-D).
    The default places are the shipped model's Nordland training range (its features have seen
    them), upsampled 64×32 → 256×128 as the engine would feed them."""
    picked = list(places)[::every]

    def load(season: str) -> list[np.ndarray]:
        out = []
        for p in picked:
            path = Path(root) / season / f"images-{p * 10:05d}.png"
            grey = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if grey is None:
                raise PoseDataError(f"Nordland frame {path} is missing or unreadable")
            out.append(cv2.resize(cv2.cvtColor(grey, cv2.COLOR_BGR2RGB), (256, 128), interpolation=cv2.INTER_LINEAR))
        return out

    poses = NORDLAND_SPACING_M * np.asarray(picked, float)[:, None]
    return PoseData(load("summer"), poses, {"winter": load("winter")}, {"winter": poses.copy()}, unit="m",
                    note=f"places {picked[0]}-{picked[-1]} every {every}: summer trains, winter tests")


def grief_data(root: Path, train_sessions: Sequence[int] = range(1, 7),
               test_sessions: Sequence[int] = range(7, 13)) -> PoseData:
    """Every location of every ``*_monthly`` set; the target is the image's horizontal offset (px of the
    1024-wide original) against the location's first session, minus the mean over the training
    sessions of that location (no test information), so predicting 0 is the trivial baseline.
    Pixels, not degrees: the SOURCE gives no field of view to convert them."""
    train_im, train_y, test_im, test_y = [], [], [], []
    sets = sorted(p for p in Path(root).glob("*_monthly") if (p / "images").is_dir())
    if not sets:
        raise PoseDataError(f"no GRIEF *_monthly folders under {root}")
    for folder in sets:
        for loc in range(1, 6):
            gt = np.loadtxt(folder / "ground_truth" / f"location_{loc}.txt")[0]  # offsets against session 1
            centre = np.mean([gt[s - 1] for s in train_sessions])
            for sessions, ims, ys in ((train_sessions, train_im, train_y), (test_sessions, test_im, test_y)):
                for s in sessions:
                    bgr = cv2.imread(str(folder / "images" / f"{s:02d}{loc:02d}.jpg"), cv2.IMREAD_COLOR)
                    if bgr is None:
                        raise PoseDataError(f"GRIEF image {folder.name}/{s:02d}{loc:02d}.jpg is missing")
                    ims.append(cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), GRIEF_SIZE, interpolation=cv2.INTER_AREA))
                    ys.append([gt[s - 1] - centre])
    scale = 1024.0 / GRIEF_SIZE[0] * POOL
    return PoseData(train_im, np.array(train_y), {"other_months": test_im}, {"other_months": np.array(test_y)},
                    unit="px", shift_scale=scale, note=f"{len(sets)} sets x 5 locations; sessions "
                    f"{list(train_sessions)} train, {list(test_sessions)} test")


# --- the head -----------------------------------------------------------------------------------

class PoseHead(nn.Module):
    """1×1 adapter → three 3×3 convs (two with stride 2) → average pool to a 2×4 grid → MLP → pose.
    A full global pool (PoseNet's) keeps only which descriptors occur; a head this shallow then
    cannot tell where they are in the frame, which is what places the camera along a facade or
    measures a heading shift. The coarse grid keeps that layout."""

    def __init__(self, in_channels: int, positions: int, rotation: bool, width: int = 32) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(16, width, 3, 2, 1), nn.ReLU(), nn.Conv2d(width, 2 * width, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(2 * width, 2 * width, 3, 1, 1), nn.ReLU(), nn.AdaptiveAvgPool2d((2, 4)), nn.Flatten(),
            nn.Linear(16 * width, 128), nn.ReLU(), nn.Linear(128, positions + (4 if rotation else 0)))
        self.adapter = nn.Conv2d(in_channels, 16, 1)  # built last: the body's init is the same for D and 3
        self.positions = positions

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = self.body(self.adapter(x))
        pos, rot = out[:, :self.positions], out[:, self.positions:]
        return pos, (F.normalize(rot, dim=1) if rot.shape[1] else None)


def encode(images: Sequence[np.ndarray], extractor, pool: int = POOL) -> tuple[torch.Tensor, torch.Tensor]:
    """Both inputs of every image from one preprocessing pass: (DVF N×D×h×w, RGB N×3×h×w), pooled."""
    dvf, rgb = [], []
    for im in images:
        batch = extractor.prepare(im)
        dvf.append(F.avg_pool2d(extractor.forward(batch), pool)[0])
        rgb.append(F.avg_pool2d(batch.float().cpu(), pool)[0])
    return torch.stack(dvf).cpu(), torch.stack(rgb)


def _crop(x: torch.Tensor, starts: torch.Tensor, width: int) -> torch.Tensor:
    return torch.stack([x[i, :, :, int(s):int(s) + width] for i, s in enumerate(starts)])


def train_head(x: torch.Tensor, poses: np.ndarray, steps: int, seed: int = 0, beta: float = 1.0,
               batch: int = 32, lr: float = 2e-3, shift_scale: float = 0.0, margin: int = 6):
    """Adam with a cosine decay on the PoseNet loss ‖x−x̂‖ + β‖q−q̂/‖q̂‖‖, positions standardised by the
    training set (so β = 1 weighs both terms alike). Returns ``predict(maps) → (positions, quats)``."""
    if steps < 1:
        raise PoseDataError(f"steps must be ≥ 1, got {steps}")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    rotation = poses.shape[1] == 7
    npos = 3 if rotation else poses.shape[1]
    y = torch.as_tensor(poses[:, :npos], dtype=torch.float32)
    q = F.normalize(torch.as_tensor(poses[:, npos:], dtype=torch.float32), dim=1) if rotation else None
    if q is not None:
        q = torch.where(q[:, 3:] < 0, -q, q)  # one hemisphere: q and −q are one rotation
    y_mean = y.mean(0)
    y_std = y.std(0).clamp_min(1e-6) if len(y) > 1 else torch.ones(npos)
    x_mean, x_std = x.mean((0, 2, 3), keepdim=True), x.std((0, 2, 3), keepdim=True).clamp_min(1e-6)
    width = x.shape[-1] - 2 * margin if shift_scale else x.shape[-1]
    head = PoseHead(x.shape[1], npos, rotation)
    opt = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=1e-4)
    head.train()
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        idx = torch.randint(len(x), (min(batch, len(x)),), generator=gen)
        xb, yb = x[idx], y[idx].clone()
        if shift_scale:  # a crop moved by s working px shows the scene s·scale px further left
            starts = torch.randint(0, 2 * margin + 1, (len(idx),), generator=gen)
            xb = _crop(xb, starts, width)
            yb[:, 0] -= (starts - margin).float() * shift_scale
        pos, qhat = head((xb - x_mean) / x_std)
        loss = ((pos - (yb - y_mean) / y_std).norm(dim=1)).mean()
        if rotation:
            loss = loss + beta * (q[idx] - qhat).norm(dim=1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    head.eval()

    @torch.no_grad()
    def predict(maps: torch.Tensor):
        if shift_scale:
            maps = maps[..., margin:margin + width]
        pos, qhat = head((maps - x_mean) / x_std)
        return (pos * y_std + y_mean).numpy(), (qhat.numpy() if qhat is not None else None)
    return predict


def pose_errors(pred_pos: np.ndarray, pred_q: np.ndarray | None, poses: np.ndarray) -> dict:
    """Median/mean position error (data units) and median rotation error (deg, NaN without orientation)."""
    npos = pred_pos.shape[1]
    err = np.linalg.norm(pred_pos - poses[:, :npos], axis=1)
    rot = float("nan")
    if pred_q is not None:
        truth = poses[:, npos:] / np.linalg.norm(poses[:, npos:], axis=1, keepdims=True)
        dots = np.clip(np.abs((truth * pred_q).sum(1)), 0.0, 1.0)
        rot = float(np.median(np.degrees(2 * np.arccos(dots))))
    return {"median_position": float(np.median(err)), "mean_position": float(np.mean(err)), "median_rotation_deg": rot}


def run_pose_regression(datasets: dict[str, PoseData], extractor, steps: int = 1000, seed: int = 0,
                        beta: float = 1.0, batch: int = 32) -> dict:
    """Train a DVF head and an RGB head per data set (same seed and batches), test on every condition.

    Per data set: sizes, steps, unit, the mean-training-position baseline, and for ``dvf`` and
    ``rgb`` the errors on the training images (fit) and on each test condition."""
    if not datasets:
        raise PoseDataError("no data sets to run")
    results = {}
    for name, data in datasets.items():
        data.check()
        train_maps = dict(zip(("dvf", "rgb"), encode(data.train_images, extractor)))
        test_maps = {c: dict(zip(("dvf", "rgb"), encode(ims, extractor))) for c, ims in data.test_images.items()}
        npos = 3 if data.train_poses.shape[1] == 7 else data.train_poses.shape[1]
        mean_pos = data.train_poses[:, :npos].mean(0, keepdims=True)
        entry = {"unit": data.unit, "note": data.note, "train_size": len(data.train_images),
                 "test_sizes": {c: len(v) for c, v in data.test_images.items()}, "steps": steps, "batch": batch,
                 "descriptor_dim": int(train_maps["dvf"].shape[1]),
                 "baseline_mean_position": {c: pose_errors(np.repeat(mean_pos, len(p), 0), None, p)["median_position"]
                                            for c, p in {"train": data.train_poses, **data.test_poses}.items()}}
        for kind in ("dvf", "rgb"):
            predict = train_head(train_maps[kind], data.train_poses, steps, seed, beta, batch,
                                 shift_scale=data.shift_scale)
            entry[kind] = {"train": pose_errors(*predict(train_maps[kind]), data.train_poses)}
            for cond, maps in test_maps.items():
                entry[kind][cond] = pose_errors(*predict(maps[kind]), data.test_poses[cond])
        results[name] = entry
    return results


def table(results: dict) -> list[dict]:
    """Table-2 rows: median position (and rotation) error, DVF beside RGB, per test condition."""
    rows = []
    for name, entry in results.items():
        for cond in entry["test_sizes"]:
            row = {"dataset": name, "test": cond, "unit": entry["unit"],
                   "baseline": round(entry["baseline_mean_position"][cond], 2)}
            for kind in ("dvf", "rgb"):
                err = entry[kind][cond]
                row[f"{kind}_position"] = round(err["median_position"], 2)
                row[f"{kind}_rotation_deg"] = (None if math.isnan(err["median_rotation_deg"])
                                               else round(err["median_rotation_deg"], 2))
            rows.append(row)
    return rows
