"""The relocalization engine: one camera frame in, ranked candidates and a verified pose out.

Stages (each timed): DVF → global descriptor → shortlist of the top-K keyframes by cosine →
contextual-similarity re-rank of the shortlist in one batch → optional sequence fusion → sparse
verification of the best M (matching + RANSAC, PnP when the keyframe has 3-D points).

The keyframe tensors the hot path needs (global descriptors, CX grids) are loaded once per map
onto the engine's device; everything else (corners, thumbnails) is read per verified keyframe.
"""
from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from ..config import DejavuConfig
from ..errors import DejavuError
from ..features.extractor import FeatureExtractor
from ..geometry import CameraIntrinsics
from ..map.errors import InvalidKeyframeError
from ..map.keyframe import Keyframe
from ..map.selection import KeyframeSelector
from ..map.store import KeyframeMap
from ..map.thumbnail import decode_thumbnail
from ..matching.pipeline import corner_features, match_to_keyframe
from ..matching.pnp import estimate_pnp
from ..matching.verification import GeometricVerification, verify
from ..similarity.cx import contextual_similarity
from ..similarity.global_descriptor import shortlist
from .frame import FrameFeatures, describe, make_keyframe, scaled_camera
from .result import Candidate, PoseEstimate, RelocalizationResult
from .sequence import SequenceFusion

log = logging.getLogger(__name__)

#: keyframe-pose covariance when the pose is the verified keyframe's own (no metric PnP):
#: the query is "somewhere near" the keyframe, a few metres and tens of degrees
_KEYFRAME_POSE_SIGMA = (3.0, 0.5)  # metres, radians at the acceptance threshold


class _Timer:
    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.ms: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            self.ms[name] = self.ms.get(name, 0.0) + (time.perf_counter() - start) * 1e3


class RelocalizationEngine:
    """Holds the model, the map and the keyframe tensors; thread-safe for one worker + map edits."""

    def __init__(self, cfg: DejavuConfig, extractor: FeatureExtractor, keyframe_map: KeyframeMap | None = None) -> None:
        self.cfg = cfg
        self.extractor = extractor
        self.map = keyframe_map
        self._lock = threading.RLock()
        self._selector = KeyframeSelector(cfg.keyframes)
        self._sequence = SequenceFusion(cfg.engine.sequence_length)
        self._load_tensors()

    # --- construction -----------------------------------------------------------------------

    @classmethod
    def from_config(cls, cfg: DejavuConfig, map_mode: str | None = None,
                    extractor: FeatureExtractor | None = None) -> "RelocalizationEngine":
        """Load the model and open (or, in mapping mode, create) ``cfg.node.map_path``."""
        extractor = extractor or FeatureExtractor.from_config(cfg.features)
        mode = map_mode or cfg.node.map_mode
        kmap = open_map(cfg, extractor, mode) if cfg.node.map_path else None
        return cls(cfg, extractor, kmap)

    def _load_tensors(self) -> None:
        dev = self.extractor.device
        self._ids = np.zeros(0, np.int64)
        self._global = torch.zeros((0, 1), device=dev)
        self._grids = torch.zeros((0, self.extractor.descriptor_dim, 1, 1), device=dev, dtype=torch.float16)
        self._positions = np.zeros((0, 3))
        self._orientations = np.zeros((0, 4))
        if self.map is None or len(self.map) == 0:
            return
        ids, glob = self.map.load_global_descriptors()
        self._ids = np.asarray(ids, np.int64)
        self._global = torch.from_numpy(np.ascontiguousarray(glob, np.float32)).to(dev)
        self._grids = torch.from_numpy(self.map.load_grids(self._ids)).to(dev)
        pose_ids, positions, orientations = self.map.load_poses()
        order = {int(k): i for i, k in enumerate(pose_ids)}
        sel = [order[int(k)] for k in self._ids]
        self._positions, self._orientations = positions[sel], orientations[sel]

    # --- properties the node reports ---------------------------------------------------------

    @property
    def map_size(self) -> int:
        return int(len(self._ids))

    @property
    def fingerprint(self) -> str:
        return self.extractor.fingerprint

    @property
    def device(self) -> str:
        return str(self.extractor.device)

    @property
    def grid_shape(self) -> tuple[int, int] | None:
        return tuple(self._grids.shape[-2:]) if self.map_size else None

    def keyframe_poses(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self._ids.copy(), self._positions.copy(), self._orientations.copy()

    def keyframe_thumbnail(self, keyframe_id: int) -> np.ndarray | None:
        with self._lock:
            return decode_thumbnail(self.map.load_thumbnail(int(keyframe_id))) if self.map else None

    def keyframe_image_size(self, keyframe_id: int) -> tuple[int, int] | None:
        """(width, height) the keyframe's corners refer to (the debug view scales its thumbnail by it)."""
        with self._lock:
            return self.map.load_image_size(int(keyframe_id)) if self.map else None

    def update_config(self, cfg: DejavuConfig) -> None:
        """Apply run-time-safe changes (thresholds, K, M, direction)."""
        with self._lock:
            if cfg.engine.sequence_length != self._sequence.length:
                self._sequence = SequenceFusion(cfg.engine.sequence_length)
            self.cfg = cfg

    # --- the hot path ------------------------------------------------------------------------

    def relocalize(self, image: np.ndarray, stamp: float, camera: CameraIntrinsics | None = None) -> RelocalizationResult:
        """Where was this frame taken? Never raises on an empty map (status ``map_empty``)."""
        with self._lock:
            cfg, timer = self.cfg, _Timer(self.extractor.device)
            size = (int(image.shape[1]), int(image.shape[0])) if getattr(image, "ndim", 0) >= 2 else (0, 0)
            if self.map_size == 0:
                return RelocalizationResult(stamp=stamp, image_size=size, status="map_empty",
                                            message="map is empty")
            with timer.stage("features"):
                frame = describe(image, self.extractor, cfg, self.grid_shape)
            with timer.stage("shortlist"):
                short_scores, short_idx = shortlist(frame.global_desc, self._global, cfg.engine.shortlist_k)
            with timer.stage("rerank"):
                grids = self._grids[short_idx].float()
                sim = cfg.similarity
                cx = contextual_similarity(frame.grid, grids, sim.offset, sim.bandwidth, sim.symmetric,
                                           sim.memory_budget_mb << 20)
                ids = self._ids[short_idx.cpu().numpy()]
                cx_np = cx.cpu().numpy().astype(np.float64)
                fused = self._sequence.fuse(ids, cx_np) if cfg.engine.sequence_length > 1 else cx_np
                order = np.argsort(-fused, kind="stable")
            candidates = [self._candidate(rank, int(short_idx[i]), float(short_scores[i]), float(cx_np[i]))
                          for rank, i in enumerate(order[: cfg.engine.publish_top_k])]
            result = RelocalizationResult(stamp=stamp, image_size=size, status="not_verified",
                                          candidates=candidates)
            with timer.stage("verification"):
                self._verify(frame, camera, result, [int(ids[i]) for i in order[: cfg.engine.verify_top_m]])
            result.timings_ms = timer.ms
            result.timings_ms["total"] = sum(timer.ms.values())
            return result

    def _candidate(self, rank: int, row: int, short: float, cx: float) -> Candidate:
        return Candidate(keyframe_id=int(self._ids[row]), rank=rank, shortlist_score=short, cx_score=cx,
                         position=self._positions[row].copy(), orientation=self._orientations[row].copy())

    def _verify(self, frame: FrameFeatures, camera: CameraIntrinsics | None, result: RelocalizationResult,
                keyframe_ids: list[int]) -> None:
        cfg = self.cfg.matching
        cam = scaled_camera(camera, frame.scale)
        query_xy = corner_features(frame.rgb, frame.dense, cfg)[0] if cfg.direction == "corners" else None
        best: tuple[GeometricVerification, Keyframe] | None = None
        for kf_id in keyframe_ids:
            kf = self.map.get(kf_id)
            matches = match_to_keyframe(frame.dense, kf.keypoints, kf.descriptors.astype(np.float32), cfg,
                                        query_xy=query_xy, query_image_size=frame.size)
            geo = verify(matches, cfg, K_query=cam, K_map=kf.camera_k)
            for cand in result.candidates:
                if cand.keyframe_id == kf_id:
                    cand.inliers = geo.num_inliers
            if best is None or (geo.accepted, geo.num_inliers) > (best[0].accepted, best[0].num_inliers):
                best = (geo, kf)
        if best is None:
            return
        geo, kf = best
        verification = geo.to_verification(int(kf.id))
        if frame.scale != 1.0:  # report query pixels in the original image
            verification.query_xy = verification.query_xy / frame.scale
        result.verification = verification
        if not geo.accepted:
            result.message = geo.reason
            return
        result.status = "relocalized"
        result.pose = self._pose(geo, kf, cam)

    def _pose(self, geo: GeometricVerification, kf: Keyframe, cam: CameraIntrinsics | None) -> PoseEstimate:
        cfg = self.cfg.matching
        if kf.points3d is not None and cam is not None:
            pnp = estimate_pnp(geo.inliers, kf.points3d, cam, cfg)
            if pnp.accepted:
                position, orientation, cov = pnp.in_map_frame(kf.position, kf.orientation, kf.covariance)
                return PoseEstimate(position=position, orientation=orientation, covariance=cov, source="pnp",
                                    inliers=pnp.num_inliers)
        # no metric solution: the query stands near the verified keyframe; confidence grows with inliers
        shrink = max(cfg.min_inliers, 1) / max(geo.num_inliers, 1)
        sigma_t, sigma_r = (s * np.sqrt(shrink) for s in _KEYFRAME_POSE_SIGMA)
        cov = np.diag([sigma_t ** 2] * 3 + [sigma_r ** 2] * 3)
        if kf.covariance is not None:
            cov = cov + kf.covariance
        return PoseEstimate(position=kf.position.copy(), orientation=kf.orientation.copy(), covariance=cov,
                            source="keyframe", inliers=geo.num_inliers)

    # --- mapping -----------------------------------------------------------------------------

    def add_frame(self, image: np.ndarray, stamp: float, position, orientation, covariance=None,
                  camera: CameraIntrinsics | None = None, depth: np.ndarray | None = None,
                  source: str = "") -> tuple[bool, str, int | None]:
        """Mapping mode: keep the frame as a keyframe when the selection rules say so.

        Returns ``(added, reason, keyframe_id)``; a bad pose is a skipped frame, not an exception.
        """
        with self._lock:
            if self.map is None or self.map.read_only:
                raise DejavuError("add_frame needs a map opened for writing (node.map_mode: map)")
            pos, quat = np.asarray(position, np.float64), np.asarray(orientation, np.float64)
            if pos.shape != (3,) or quat.shape != (4,) or not (np.isfinite(pos).all() and np.isfinite(quat).all()):
                return False, "invalid_pose: NaN/Inf or wrong shape", None
            if covariance is not None and (np.size(covariance) != 36
                                           or not np.isfinite(np.asarray(covariance, np.float64)).all()):
                return False, f"invalid_pose: covariance must be 36 finite values, got {np.size(covariance)}", None
            if abs(np.linalg.norm(quat) - 1.0) > 1e-3:
                return False, f"invalid_pose: quaternion norm {np.linalg.norm(quat):.4g} is not 1", None
            add, reason = self._selector.should_add(stamp, pos, quat)
            if not add and not self.cfg.keyframes.novelty_cx:
                return False, reason, None
            frame = describe(image, self.extractor, self.cfg, self.grid_shape)
            if not add:
                prev = self._grids[-1].float()
                sim = self.cfg.similarity
                novelty = float(contextual_similarity(frame.grid, prev, sim.offset, sim.bandwidth, sim.symmetric)[0])
                add, reason = self._selector.should_add(stamp, pos, quat, novelty_cx=novelty)
                if not add:
                    return False, reason, None
            kf = make_keyframe(frame, stamp, pos, quat, self.cfg, covariance=covariance, camera=camera,
                               depth=depth, source=source, frame_id=self.map.frame_id)
            try:
                kf_id = self.map.append(kf)
            except InvalidKeyframeError as exc:
                return False, f"invalid_keyframe: {exc}", None
            self._append_tensors(kf_id, kf)
            return True, reason, kf_id

    def _append_tensors(self, kf_id: int, kf: Keyframe) -> None:
        dev = self.extractor.device
        glob = torch.from_numpy(kf.global_desc.astype(np.float32))[None].to(dev)
        grid = torch.from_numpy(kf.grid.astype(np.float16))[None].to(dev)
        self._global = glob if self.map_size == 0 else torch.cat([self._global, glob])
        self._grids = grid if self.map_size == 0 else torch.cat([self._grids, grid])
        self._ids = np.append(self._ids, kf_id)
        self._positions = np.vstack([self._positions, kf.position[None]])
        self._orientations = np.vstack([self._orientations, kf.orientation[None]])

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
            self._sequence.reset()
            return self.map_size

    def close(self) -> None:
        with self._lock:
            if self.map is not None:
                self.map.close()


def open_map(cfg: DejavuConfig, extractor: FeatureExtractor, mode: str) -> KeyframeMap:
    """Localize: open read-only and check the model. Map: open for appending, creating it if new."""
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
