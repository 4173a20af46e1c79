"""RobotCar Seasons folder → keyframe map (the reference traversal with its training poses).

Images without a pose are skipped and counted: a keyframe without a pose cannot relocalize
anyone. Poses are camera → world in the dataset's reconstruction frame, used as they are.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation
from tqdm import tqdm

from ..config import DejavuConfig
from ..errors import DejavuError
from ..features.extractor import FeatureExtractor
from ..datasets.robotcar.seasons import SeasonsDataset
from ..relocalization.engine import RelocalizationEngine, open_map
from .build import BuildSummary


def build_map_from_seasons(root: str | Path, out: str | Path, condition: str, camera: str, cfg: DejavuConfig,
                           extractor: FeatureExtractor | None = None, *, append: bool = False,
                           progress: bool = True) -> BuildSummary:
    out = Path(out)
    if out.exists() and not append:
        raise DejavuError(f"map {out} already exists; pass --append to extend it (nothing is overwritten)")
    dataset = SeasonsDataset(root)
    if condition not in dataset.conditions:
        raise DejavuError(f"{root}: no condition {condition!r}; conditions present: {', '.join(dataset.conditions)}")
    if camera not in dataset.cameras(condition):
        raise DejavuError(f"{root}: condition {condition} has no camera {camera!r}; cameras: "
                          f"{', '.join(dataset.cameras(condition))}")
    extractor = extractor or FeatureExtractor.from_config(cfg.features)
    cfg.node.map_path = str(out)
    engine = RelocalizationEngine(cfg, extractor, open_map(cfg, extractor, "map"))
    summary = BuildSummary(map_path=str(out))
    try:
        for record in tqdm(list(dataset.records([condition], [camera])), unit="image", desc="build-map",
                           disable=not progress):
            summary.frames_read += 1
            if record.pose is None:
                summary.skipped["no_pose"] += 1
                continue
            rotation = record.pose[:3, :3]
            if not np.all(np.isfinite(record.pose)) or abs(np.linalg.det(rotation) - 1.0) > 1e-3:
                summary.skipped["invalid_pose"] += 1
                continue
            quat = Rotation.from_matrix(rotation).as_quat()
            decision = engine.add_frame(record.load_rgb(), record.stamp, record.pose[:3, 3], quat,
                                        camera=record.intrinsics, source=f"{condition}/{camera}")
            if decision.added:
                summary.keyframes += 1
            else:
                summary.skipped[decision.reason.split(":")[0]] += 1
    finally:
        engine.close()
    for message in dataset.problems.messages:  # malformed pose rows: file:line: what
        summary.skipped[f"format: {message}"] += 1
    return summary
