"""Mapping mode of the engine: frames with a pose become keyframes, by the selection rules.

Kept apart from the query path (engine.py) because it writes: every keyframe is its own committed
transaction, each mapping session is one drive (traversal) of the map, and the keyframe tensors
the query path searches grow with every append.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..config import DejavuConfig
from ..errors import DejavuError
from ..features.extractor import FeatureExtractor
from ..features.keypoint_head import check_keypoint_head
from ..geometry import CameraIntrinsics, pose_problem
from ..map.errors import InvalidKeyframeError
from ..map.keyframe import Keyframe
from ..map.store import KeyframeMap
from ..similarity.cx import contextual_similarity
from .frame import describe, make_keyframe
from .result import KeyframeDecision


class MappingMode:
    """The engine's writing half (:class:`~dejavu_ros.relocalization.engine.RelocalizationEngine`
    provides the state: map, extractor, config, selector, keyframe tensors)."""

    def add_frame(self, image: np.ndarray, stamp: float, position, orientation, covariance=None,
                  camera: CameraIntrinsics | None = None, depth: np.ndarray | None = None,
                  source: str = "") -> KeyframeDecision:
        """Mapping mode: keep the frame as a keyframe when the selection rules say so.

        A bad pose is a skipped frame (``added`` False, the reason says why), not an exception.
        """
        with self._lock:
            if self.map is None or self.map.read_only:
                raise DejavuError("add_frame needs a map opened for writing (node.map_mode: map)")
            problem = pose_problem(position, orientation, covariance)
            if problem is not None:
                return KeyframeDecision(False, f"invalid_pose: {problem}")
            pos, quat = np.asarray(position, np.float64), np.asarray(orientation, np.float64)
            add, reason = self._selector.should_add(stamp, pos, quat)
            if not add and not self.cfg.keyframes.novelty_cx:
                return KeyframeDecision(False, reason)
            frame = describe(image, self.extractor, self.cfg, self.grid_shape)
            if not add:
                prev = self._grids[-1].float()
                sim = self.cfg.similarity
                novelty = float(contextual_similarity(frame.grid, prev, sim.offset, sim.bandwidth, sim.symmetric)[0])
                add, reason = self._selector.should_add(stamp, pos, quat, novelty_cx=novelty)
                if not add:
                    return KeyframeDecision(False, reason)
            kf = make_keyframe(frame, stamp, pos, quat, self.cfg, covariance=covariance, camera=camera,
                               depth=depth, source=source, frame_id=self.map.frame_id)
            kf.extra["traversal"] = self._session_traversal()
            try:
                kf_id = self.map.append(kf)
            except InvalidKeyframeError as exc:
                return KeyframeDecision(False, f"invalid_keyframe: {exc}")
            self._append_tensors(kf_id, kf)
            return KeyframeDecision(True, reason, kf_id)

    def _session_traversal(self) -> int:
        """Each mapping session (a build-map run, a node in mapping mode) is one drive of the map."""
        if self._traversal is None:
            known = [int(k.split()[1]) for k in self._traversal_keys if k.startswith("traversal ")]
            self._traversal = max(known, default=-1) + 1
        return self._traversal

    def _append_tensors(self, kf_id: int, kf: Keyframe) -> None:
        dev = self.extractor.device
        glob = torch.from_numpy(kf.global_desc.astype(np.float32))[None].to(dev)
        grid = torch.from_numpy(kf.grid.astype(np.float16))[None].to(dev)
        self._global = glob if self.map_size == 0 else torch.cat([self._global, glob])
        self._grids = grid if self.map_size == 0 else torch.cat([self._grids, grid])
        self._ids = np.append(self._ids, kf_id)
        self._positions = np.vstack([self._positions, kf.position[None]])
        self._orientations = np.vstack([self._orientations, kf.orientation[None]])
        self._traversal_keys.append(f"traversal {kf.extra['traversal']}" if "traversal" in kf.extra
                                    else f"source {kf.source}")
        if (self._index is None and self.map_size >= self.cfg.engine.faiss_min_keyframes) or \
                (self._index is not None and self._index.stale(self.map_size)):
            self._index = self._shortlist_index()  # crossed the FAISS threshold, or grew past the index

    def save_map(self) -> Path | None:
        """Every append is its own committed transaction, so saving only confirms the file."""
        with self._lock:
            return None if self.map is None else self.map.path

    def reload_map(self) -> int:
        """Re-read the map file (e.g. after another process extended it); returns the keyframe count."""
        with self._lock:
            if self.map is not None:
                path, read_only = self.map.path, self.map.read_only
                self.map.close()
                self.map = KeyframeMap.open(path, mode="r" if read_only else "rw",
                                            expected_fingerprint=self.fingerprint,
                                            expected_descriptor_dim=self.extractor.descriptor_dim,
                                            allow_model_mismatch=self.cfg.node.allow_model_mismatch)
            self._load_tensors()
            self.reset_route()
            return self.map_size


def open_map(cfg: DejavuConfig, extractor: FeatureExtractor, mode: str) -> KeyframeMap:
    """Localize: open read-only and check the model. Map: open for appending, creating it if new.

    The keypoint head is checked first, so a bad ``matching.keypoint_head`` creates no map file."""
    check_keypoint_head(cfg.matching, extractor)
    path = Path(cfg.node.map_path)
    if mode == "map" and not path.exists():
        return KeyframeMap.create(path, model_fingerprint=extractor.fingerprint,
                                  descriptor_dim=extractor.descriptor_dim, frame_id=cfg.keyframes.frame_id,
                                  engine_config=_map_config(cfg))
    return KeyframeMap.open(path, mode="rw" if mode == "map" else "r", expected_fingerprint=extractor.fingerprint,
                            expected_descriptor_dim=extractor.descriptor_dim,
                            allow_model_mismatch=cfg.node.allow_model_mismatch)


def _map_config(cfg: DejavuConfig) -> dict:
    """The settings that shaped the stored descriptors (recorded in the map's meta table)."""
    from .. import schema

    return {k: v for k, v in schema.to_flat(cfg).items()
            if k.split(".")[0] in ("features", "similarity", "matching", "keyframes")}
