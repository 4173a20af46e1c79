"""The relocalization engine: one camera frame in, ranked candidates and a trusted pose out.

Stages (each timed): DVF → global descriptor → the best keyframes by cosine (with route localization:
its best P, pre-ranked by a coarse CX on pooled grids, similarity/prerank.py) → a shortlist of K,
re-ranked by the full CX in one batch → route localization over the recent frames
(relocalization/route.py: sequence search, or an odometry filter when odometry is given;
``engine.sequence_length`` frames, 0 = off) → sparse verification of the best M, of the route's
keyframe and of the runner-up places → the trust decision (relocalization/trust.py): each verified
keyframe's evidence against the strongest other place, calibrated into a probability; the best place is
published when it reaches ``trust.min_confidence``, its pose anchored on the keyframe of that place sharing
the most of the view, or on the route's keyframe when a settled route names one that nearly ties
(relocalization/pose.py: ``pose_anchor``).

The keyframe tensors the hot path needs (global descriptors, CX grids, poses) are loaded once per
map onto the engine's device; everything else (corners, thumbnails) is read per verified keyframe.
"""
from __future__ import annotations

import logging
import threading

import numpy as np
import torch
from scipy.spatial import cKDTree

from ..config import DejavuConfig
from ..features.extractor import FeatureExtractor
from ..features.keypoint_head import check_keypoint_head
from ..geometry import CameraIntrinsics
from ..map.keyframe import Keyframe
from ..map.selection import KeyframeSelector
from ..map.store import KeyframeMap
from ..map.thumbnail import decode_thumbnail
from ..matching.pipeline import corner_features
from ..matching.verification import GeometricVerification
from ..similarity.cx import contextual_similarity
from ..similarity.faiss_index import map_index, shortlist_rows
from ..similarity.global_descriptor import shortlist
from ..similarity.grid import extend_rows
from ..similarity.prerank import CoarseCX
from . import trust
from .candidates import ranked_candidates
from .frame import FrameFeatures, describe, usable_camera
from .keyframe_matching import refine_keyframe, verify_keyframe
from .mapping import MappingMode, open_map
from .overlap import box_overlaps, embed_grids, load_box_head
from .pose import (
    ROUTE_ANCHOR_SUPPORT,
    anchor_spread,
    estimate_pose,
    pose_anchor,
    trusted_place,
)
from .result import RelocalizationResult, Status
from .route import (
    KeyframeBaseline,
    OdometryFilter,
    RouteHypothesis,
    SequenceSearch,
    Traversals,
    frame_scores,
)
from .timing import StageTimer

log = logging.getLogger(__name__)


def _route_settings(cfg: DejavuConfig) -> tuple[int, int]:
    """The parameters the route state is built from: the sequence search's and the filter's length,
    the baseline's frames."""
    return cfg.engine.sequence_length, cfg.engine.route_baseline_frames


class RelocalizationEngine(MappingMode):
    """Holds the model, the map, the keyframe tensors and the trust calibration; thread-safe for one
    worker + map edits."""

    def __init__(self, cfg: DejavuConfig, extractor: FeatureExtractor, keyframe_map: KeyframeMap | None = None,
                 trust_model: trust.TrustModel | None = None) -> None:
        self.cfg = cfg
        self.extractor = extractor
        self.map = keyframe_map
        self.trust = trust_model or trust.TrustModel.load(cfg.trust.model or None)
        self.trust_mismatch = trust.calibration_mismatch(self.trust, extractor.fingerprint)
        if self.trust_mismatch:
            log.warning(self.trust_mismatch)
        check_keypoint_head(cfg.matching, extractor)
        self._box_head = load_box_head(cfg.engine.overlap_head, extractor.descriptor_dim)
        self._lock = threading.RLock()
        self._selector = KeyframeSelector(cfg.keyframes)
        self._traversal: int | None = None  # this mapping session's traversal id (set at its first keyframe)
        self._warned_refine = False  # matching.refine on a map without its features: said once
        self._new_route_state()
        self._load_tensors()

    # --- construction -----------------------------------------------------------------------

    @classmethod
    def from_config(cls, cfg: DejavuConfig, map_mode: str | None = None,
                    extractor: FeatureExtractor | None = None) -> "RelocalizationEngine":
        """Load the model and open (or, in mapping mode, create) ``cfg.node.map_path``."""
        extractor = extractor or FeatureExtractor.from_config(cfg.features)
        load_box_head(cfg.engine.overlap_head, extractor.descriptor_dim)  # a bad head fails before a map is made
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
        self._spacing: np.ndarray | None = None
        self._traversal_keys: list = []
        self._traversals: Traversals | None = None
        self._index = None  # the FAISS shortlist of a large map
        self._boxes = None  # the overlap head's keyframe boxes (N×2×d: lower, upper), embedded on first use
        self._coarse = CoarseCX()  # the pre-rank's pooled grids, pooled on first use (and as the map grows)
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
        self._traversal_keys = self.map.load_traversals(self._ids)
        self._traversals = None
        self._index = self._shortlist_index()

    def _shortlist_index(self):
        """The FAISS shortlist of a large map (similarity/faiss_index.py); None below faiss_min_keyframes."""
        if self.map_size < self.cfg.engine.faiss_min_keyframes:
            return None
        return map_index(self.map, self._global.cpu().numpy())

    def _new_route_state(self) -> None:
        length = self.cfg.engine.sequence_length
        self._search, self._filter = SequenceSearch(length), OdometryFilter(length)
        self._baseline = KeyframeBaseline(self.cfg.engine.route_baseline_frames)

    def _route_traversals(self) -> Traversals:
        if self._traversals is None or len(self._traversals.which) != self.map_size:
            self._traversals = Traversals.from_map(self._traversal_keys, self._positions)
        return self._traversals

    def _keyframe_spacing(self, row: int) -> float:
        """Distance from keyframe ``row`` to its nearest other keyframe (inf in a one-keyframe map)."""
        if self._spacing is None or len(self._spacing) != self.map_size:
            if self.map_size < 2:
                self._spacing = np.full(self.map_size, np.inf)
            else:
                dist, _ = cKDTree(self._positions).query(self._positions, k=2)
                self._spacing = dist[:, 1]
        return float(self._spacing[row])

    # --- properties the node reports ---------------------------------------------------------

    @property
    def map_size(self) -> int:
        return int(len(self._ids))

    @property
    def fingerprint(self) -> str:
        return self.extractor.fingerprint

    @property
    def trust_fitted_on(self) -> str:
        """The DVF model the trust calibration was fitted on ("" = not recorded)."""
        return self.trust.dvf_fingerprint

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
            self.cfg = cfg
            # against what the route state was built for (not self.cfg, which a caller may have changed in place)
            if _route_settings(cfg) != (self._search.length, self._baseline.frames):
                self._new_route_state()

    def reset_route(self) -> None:
        """Forget the recent frames (a kidnapped robot, or a global relocalization on request)."""
        with self._lock:
            self._search.reset()
            self._filter.reset()
            self._baseline.reset()

    # --- the hot path ------------------------------------------------------------------------

    def relocalize(self, image: np.ndarray, stamp: float, camera: CameraIntrinsics | None = None,
                   odometry: np.ndarray | None = None) -> RelocalizationResult:
        """Where was this frame taken? Never raises on an empty map (status ``map_empty``).

        ``odometry``: the robot's (or camera's) position (3,) in its odometry frame at this image, any
        frame: only the distance travelled between frames is used (the route filter's motion).
        """
        with self._lock:
            cfg, timer = self.cfg, StageTimer(self.extractor.device)
            size = (int(image.shape[1]), int(image.shape[0])) if getattr(image, "ndim", 0) >= 2 else (0, 0)
            if self.map_size == 0:
                return RelocalizationResult(stamp=stamp, image_size=size, status=Status.MAP_EMPTY,
                                            message="map is empty")
            with timer.stage("features"):
                frame = describe(image, self.extractor, cfg, self.grid_shape)
            eng = cfg.engine
            prerank = eng.prerank_k > 0 and eng.sequence_length > 0  # similarity/prerank.py: why routes only
            with timer.stage("shortlist"):
                cosine = self._global @ frame.global_desc if eng.sequence_length > 0 or self._index is None \
                    else None  # route localization scores every keyframe; a FAISS shortlist alone need not
                k = max(eng.prerank_k, eng.shortlist_k) if prerank else eng.shortlist_k
                if self._index is not None:
                    rows = shortlist_rows(self._index, self._global.cpu().numpy(),
                                          frame.global_desc.cpu().numpy(), k, eng.faiss_nprobe)[1]
                else:
                    rows = shortlist(frame.global_desc, self._global, k, scores=cosine)[1].cpu().numpy()
                if cosine is None:
                    cosine = torch.zeros(self.map_size, device=self._global.device)
                    cosine[torch.as_tensor(rows, device=cosine.device)] = \
                        self._global[torch.as_tensor(rows, device=cosine.device)] @ frame.global_desc
            coarse = []  # (rows, coarse CX) for the route's scores
            if prerank:
                with timer.stage("prerank"):
                    pre = self._coarse.scores(frame.grid, self._grids, rows, cfg.similarity)
                    coarse = [(rows, pre)]
                    rows = rows[np.argsort(-pre, kind="stable")[:eng.shortlist_k]]
            with timer.stage("rerank"):
                cx_np = self._cx(frame, rows)
            route = None
            if eng.sequence_length > 0:
                with timer.stage("route"):
                    terms = [*coarse, (rows, cx_np)]
                    route = self._route(frame_scores(cosine.cpu().numpy(), *terms), odometry, 1 + len(terms))
                    if route is not None and route.row not in rows:  # the route's keyframe joins the candidates
                        rows = np.append(rows, route.row)
                        cx_np = np.append(cx_np, self._cx(frame, rows[-1:]))
            order = np.argsort(-cx_np, kind="stable")
            result = RelocalizationResult(stamp=stamp, image_size=size, status=Status.NOT_VERIFIED)
            if route is not None:
                result.route_keyframe, result.route_support = int(self._ids[route.row]), route.support
                result.route_position = self._positions[route.row].copy()
            overlaps = None
            if self._box_head is not None:
                with timer.stage("overlap"):
                    overlaps = self._overlaps(frame, rows[order])
            with timer.stage("verification"):
                self._decide(frame, usable_camera(camera), result, rows[order], cx_np[order],
                             cosine.cpu().numpy()[rows[order]], route, overlaps)
            result.timings_ms = timer.ms
            result.timings_ms["total"] = sum(timer.ms.values())
            return result

    def _overlaps(self, frame: FrameFeatures, rows: np.ndarray) -> dict[str, np.ndarray]:
        """The overlap head's estimates for keyframe ``rows`` (boxes of new keyframes embedded first)."""
        head = self._box_head
        self._boxes = extend_rows(self._boxes, self._grids, lambda new: torch.stack(embed_grids(head, new), dim=1))
        with torch.no_grad():
            query = head(frame.grid)
        return box_overlaps(head, query, (self._boxes[:, 0], self._boxes[:, 1]), rows)

    def _cx(self, frame: FrameFeatures, rows: np.ndarray) -> np.ndarray:
        """Contextual similarity of the frame to keyframe ``rows``, in one batch."""
        sim = self.cfg.similarity
        grids = self._grids[torch.as_tensor(rows, device=self._grids.device)].float()
        cx = contextual_similarity(frame.grid, grids, sim.offset, sim.bandwidth, sim.symmetric,
                                   sim.memory_budget_mb << 20)
        return cx.cpu().numpy().astype(np.float64)

    def _route(self, scores: np.ndarray, odometry, terms: int) -> RouteHypothesis | None:
        """``scores``: a sum of ``terms`` z-scores, taken against each keyframe's recent mean
        (route.KeyframeBaseline); the filter's likelihood is exp of their mean."""
        traversals = self._route_traversals()
        radius = self.cfg.trust.place_radius_m
        scores = self._baseline.normalise(scores, odometry, min_step_m=0.5 * traversals.median_step_m)

        def near_of(row: int) -> np.ndarray:
            return np.linalg.norm(self._positions - self._positions[row], axis=1) < radius

        if odometry is not None:
            return self._filter.update(scores / terms, np.asarray(odometry, np.float64), traversals, near_of)
        return self._search.update(scores, traversals, near_of)

    def _decide(self, frame: FrameFeatures, camera: CameraIntrinsics | None, result: RelocalizationResult,
                rows: np.ndarray, scores: np.ndarray, short_scores: np.ndarray,
                route: RouteHypothesis | None = None, overlaps: dict | None = None) -> None:
        """Verify the best candidates, the route's keyframe and the runner-up places, calibrate, publish
        the winner if trusted. With ``engine.min_overlap``, best candidates the overlap head says share
        too little of the view are skipped (never the runner-ups: the trust decision needs their
        evidence)."""
        cfg, model = self.cfg, self.trust
        near = trust.same_place(self._positions[rows], cfg.trust.place_radius_m)
        to_verify = list(range(min(cfg.engine.verify_top_m, len(rows))))
        if overlaps is not None and cfg.engine.min_overlap > 0:
            shared = np.maximum(overlaps["overlap_query"], overlaps["overlap_keyframe"])
            to_verify = [k for k in to_verify if shared[k] >= cfg.engine.min_overlap]
        route_k = int(np.flatnonzero(rows == route.row)[0]) if route is not None else None
        if to_verify and route_k is not None and route_k not in to_verify:
            to_verify.insert(0, route_k)
        if to_verify:  # the runner-up places get geometric evidence too
            to_verify += trust.runner_ups(near, to_verify, cfg.trust.other_places)
        checked = self._verify(frame, camera, rows, to_verify)
        stats = {k: geo.stats() for k, (geo, _kf) in checked.items()}
        confidence = np.zeros(len(rows))
        best = None
        for k in range(len(rows)):
            other = trust.other_place(k, near, scores, stats, model.typical_other)
            if k in stats:
                x = trust.features(stats[k], scores[k], other, route_support=(
                    None if route is None else route.support if near[k, route_k] else 0.0))
                confidence[k] = model.probability(x)
                result.evidence[int(self._ids[rows[k]])] = {**x, **{f"stat_{n}": v for n, v in stats[k].items()},
                                                            "other_exists": float(other.exists)}
                # the best accepted candidate wins (as the calibration scores it); one that failed the
                # geometric checks only when none passed (its reason is then the message)
                key = (checked[k][0].accepted, confidence[k])
                if best is None or key > (checked[best][0].accepted, confidence[best]):
                    best = k
            else:
                confidence[k] = model.cx_probability(
                    np.log(max(scores[k], 1e-6)) - np.log(max(other.cx, 1e-6)))
        result.candidates = ranked_candidates(rows, self._ids, self._positions, self._orientations, scores,
                                              short_scores, confidence, checked, result.image_size, overlaps,
                                              cfg.engine.publish_top_k)
        if best is None:
            result.confidence = float(confidence[0]) if len(rows) else 0.0
            result.message = "no candidate was verified (engine.verify_top_m is 0, or engine.min_overlap skipped them)"
            return
        geo, kf = checked[best]
        result.verification = geo.to_verification(int(kf.id))
        result.confidence = float(confidence[best])
        if not geo.accepted:
            result.message = geo.reason
        elif result.confidence < cfg.trust.min_confidence:
            result.message = (f"confidence {result.confidence:.3f} < trust.min_confidence "
                              f"{cfg.trust.min_confidence}: keyframe {kf.id} does not stand out from other places")
        else:
            settled = route is not None and route.support >= ROUTE_ANCHOR_SUPPORT
            anchor = pose_anchor(best, near, checked, confidence, cfg.trust.min_confidence,
                                 route=route_k if settled else None)
            spread = anchor_spread(anchor, trusted_place(best, near, checked, confidence, cfg.trust.min_confidence),
                                   checked, self._positions[rows])
            geo, kf = checked[anchor]
            points, refinement = kf.points3d, None
            if cfg.matching.refine != "off":
                refinement, refined_points = self._refine(frame, camera, geo, kf)
                if refinement is not None and refinement.accepted:
                    geo, points = refinement.geometry, refined_points
            result.verification = geo.to_verification(int(kf.id))
            if refinement is not None:
                result.verification.stats.update(refinement.stats())
            result.status = Status.RELOCALIZED
            result.pose = estimate_pose(geo, kf, camera, cfg.matching, result.confidence,
                                        min(self._keyframe_spacing(int(rows[anchor])), cfg.trust.place_radius_m),
                                        cfg.trust.place_radius_m, points3d=points, spread_m=spread)

    def _verify(self, frame: FrameFeatures, camera: CameraIntrinsics | None, rows: np.ndarray,
                which: list[int]) -> dict[int, tuple[GeometricVerification, Keyframe]]:
        """Sparse matching + RANSAC of candidates ``which`` (indices into ``rows``), in original pixels."""
        cfg = self.cfg.matching
        query_xy = corner_features(frame.rgb, frame.dense, cfg)[0] if cfg.direction == "corners" else None
        out = {}
        for k in which:
            kf = self.map.get(int(self._ids[rows[k]]))
            out[k] = (verify_keyframe(frame, kf, camera, self.extractor, self.map, cfg, query_xy), kf)
        return out

    def _refine(self, frame: FrameFeatures, camera: CameraIntrinsics | None, trusted: GeometricVerification,
                kf: Keyframe):
        """``matching.refine``'s fit of the trusted keyframe and the 3-D points it indexes (keyframe_matching.py)."""
        refinement, points = refine_keyframe(frame, kf, camera, trusted, self.extractor, self.map, self.cfg.matching)
        if refinement is None and not self._warned_refine:
            log.warning("matching.refine %s: keyframe %s was mapped without its features (rebuild the map with "
                        "this setting); publishing the trusted verification's own matches",
                        self.cfg.matching.refine, kf.id)
            self._warned_refine = True
        return refinement, points

    def close(self) -> None:
        with self._lock:
            if self.map is not None:
                self.map.close()
