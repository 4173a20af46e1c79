"""Calibrating the trust decision on labelled relocalizations (``benchmarks/bench_trust.py``).

1. :func:`run_scenario` builds each scenario's map (every map frame a keyframe), relocalizes every
   query with the engine and records, per candidate, its evidence and whether it shows the
   query's place (:class:`QueryOutcome`).
2. :func:`fit_trust` fits the two logistic models of :mod:`dejavu_ros.relocalization.trust`
   (L2-regularised, data sets weighted equally so a large one does not drown the others). A
   candidate farther from the truth than the scenario's tolerance but inside the place radius is
   left out of the fit: at the place level it is the right place (the trust decision compares
   places), by the pose tolerance it is not — an ambiguous label either way.
3. :func:`leave_one_out` re-fits without each data set and scores that data set with the result:
   the honest precision / recall of the decision on data its calibration never saw.
4. :func:`operating_point` picks the threshold by the rule declared before the first run.

A published frame is right when the keyframe its pose is anchored on shows the query's place, as the
engine anchors it (:class:`AnchoredPlace`); evidence saved without candidate positions is scored on
the winning keyframe, as before that was recorded.
"""
from __future__ import annotations

import math
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy.optimize import minimize

from ..config import DejavuConfig
from ..features.extractor import FeatureExtractor
from ..map.store import KeyframeMap
from ..relocalization.engine import RelocalizationEngine
from ..relocalization.frame import describe, make_keyframe
from ..relocalization.pose import ROUTE_ANCHOR_SUPPORT, near_tie
from ..relocalization.trust import FEATURES, OtherPlace, TrustModel
from .scenarios import Frame, Scenario

#: L2 penalty of the logistic fits (on standardised features)
L2 = 1.0


@dataclass
class CandidateOutcome:
    keyframe_id: int
    correct: bool
    cx: float
    cx_margin: float  # log CX − log best CX of another place
    features: dict[str, float] | None  # geometric features when verified
    accepted: bool = False  # passed the geometric checks
    distance_m: float = float("inf")  # keyframe to the query's true position
    position: tuple[float, float, float] | None = None  # the keyframe's, map frame (places of candidates)
    #: among the engine's reported candidates (engine.publish_top_k); False: verified by the engine (a
    #: runner-up place, the route's keyframe) but ranked below them — it can still win or anchor the pose
    reported: bool = True


@dataclass
class QueryOutcome:
    scenario: str
    query: str
    candidates: list[CandidateOutcome]
    relocalized: bool = False
    winner: int | None = None  # the keyframe id the engine reported
    winner_correct: bool = False
    confidence: float = 0.0
    route_correct: bool | None = None  # the route hypothesis shows the query's place (None: route off)
    route_keyframe: int | None = None  # the keyframe id the route hypothesis names (None: route off)
    top1_correct: bool = False  # the best CX candidate does
    timings_ms: dict = field(default_factory=dict)

    @property
    def verified(self) -> list[CandidateOutcome]:
        """The reported candidates with geometric evidence (what the fits see)."""
        return [c for c in self.candidates if c.features is not None and c.reported]

    @property
    def checked(self) -> list[CandidateOutcome]:
        """Every candidate the engine verified, reported or not (what its decision sees)."""
        return [c for c in self.candidates if c.features is not None]


def build_scenario_map(frames: Sequence[Frame], path: Path, cfg: DejavuConfig, extractor: FeatureExtractor,
                       grid_shape: tuple[int, int] | None = None) -> KeyframeMap:
    """A map holding every frame as a keyframe (no selection rules: the scenario chose them)."""
    kmap = KeyframeMap.create(path, model_fingerprint=extractor.fingerprint, descriptor_dim=extractor.descriptor_dim,
                              frame_id="map", engine_config={})
    for i, f in enumerate(frames):
        feats = describe(f.load(), extractor, cfg, grid_shape)
        grid_shape = grid_shape or tuple(feats.grid.shape[-2:])
        kf = make_keyframe(feats, f.stamp or float(i), f.position, f.orientation, cfg, camera=f.camera,
                           source=f.name, frame_id="map")
        kf.extra["traversal"] = f.traversal
        kmap.append(kf)
    return kmap


def run_scenario(scenario: Scenario, cfg: DejavuConfig, extractor: FeatureExtractor,
                 trust_model: TrustModel | None = None, workdir: Path | None = None,
                 progress: bool = False, odometry: Sequence[np.ndarray] | None = None) -> list[QueryOutcome]:
    """Relocalize every query of ``scenario`` against its map, in order; one outcome per query.

    ``odometry``: per query, a position in some odometry frame (route localization's motion input).
    """
    from tqdm import tqdm

    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        kmap = build_scenario_map(scenario.map_frames, Path(tmp) / f"{scenario.name}.db", cfg, extractor)
        engine = RelocalizationEngine(cfg, extractor, kmap, trust_model=trust_model)
        ids, positions, _ = engine.keyframe_poses()
        where = {int(k): p for k, p in zip(ids, positions)}
        out = []
        try:
            for i, q in enumerate(tqdm(scenario.queries, desc=scenario.name, disable=not progress, leave=False)):
                result = engine.relocalize(q.load(), q.stamp, q.camera,
                                           odometry=None if odometry is None else odometry[i])
                out.append(_outcome(scenario, q, result, where))
        finally:
            engine.close()
    return out


def _outcome(scenario: Scenario, query: Frame, result, where: dict[int, np.ndarray]) -> QueryOutcome:
    def candidate(kid: int, cx: float, reported: bool) -> CandidateOutcome:
        ev = result.evidence.get(kid)
        features = None if ev is None else {k: ev[k] for k in FEATURES}
        margin = float(ev["cx_margin"]) if ev is not None else float("nan")
        return CandidateOutcome(kid, scenario.correct(where[kid], query), cx, margin, features,
                                bool(ev and ev.get("stat_accepted", 0.0) > 0.5),
                                float(np.linalg.norm(where[kid] - query.position)),
                                tuple(float(v) for v in where[kid]), reported)

    cands = [candidate(c.keyframe_id, c.cx_score, True) for c in result.candidates]
    reported = {c.keyframe_id for c in result.candidates}
    cands += [candidate(int(kid), float("nan"), False) for kid in result.evidence if int(kid) not in reported]
    winner = result.keyframe_id
    route = result.route_keyframe
    return QueryOutcome(scenario.name, query.name, cands, relocalized=result.relocalized, winner=winner,
                        winner_correct=winner is not None and scenario.correct(where[winner], query),
                        confidence=result.confidence,
                        route_correct=None if route is None else scenario.correct(where[route], query),
                        route_keyframe=None if route is None else int(route),
                        top1_correct=bool(cands) and cands[0].correct, timings_ms=dict(result.timings_ms))


# --- fitting ----------------------------------------------------------------------------------

def _logistic(x: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float = L2) -> tuple[np.ndarray, float]:
    """Weighted L2-regularised logistic regression; returns (coefficients, intercept)."""
    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = x @ theta[1:] + theta[0]
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))
        eps = 1e-12
        value = -np.sum(w * (y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))) + 0.5 * l2 * theta[1:] @ theta[1:]
        grad_z = w * (p - y)
        grad = np.concatenate([[grad_z.sum()], x.T @ grad_z + l2 * theta[1:]])
        return float(value), grad

    theta = minimize(loss, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B").x
    return theta[1:], float(theta[0])


def _weights(groups: Sequence[str]) -> np.ndarray:
    """Each data set sums to the same weight (the mean group size)."""
    groups = np.asarray(groups)
    names, counts = np.unique(groups, return_counts=True)
    per = dict(zip(names, counts.mean() / counts))
    return np.array([per[g] for g in groups])


def fit_trust(outcomes: Sequence[QueryOutcome], threshold: float = 0.5, meta: dict | None = None,
              place_radius_m: float = 15.0) -> TrustModel:
    """Both logistic models from labelled outcomes; ``typical_other`` from the wrong candidates.

    Candidates wrong by the tolerance but within ``place_radius_m`` of the truth are left out.
    """
    rows, labels, groups = [], [], []
    cx_rows, cx_labels, cx_groups = [], [], []
    wrong_stats = []
    for q in outcomes:
        for c in q.candidates:
            if not c.reported:
                continue  # the fits were made on the reported candidates
            if not c.correct and c.distance_m < place_radius_m:
                continue
            if c.features is not None:
                rows.append([c.features[k] for k in FEATURES])
                labels.append(float(c.correct))
                groups.append(q.scenario)
                if not c.correct:
                    wrong_stats.append((math.expm1(c.features["log_inliers"]),
                                        math.expm1(c.features["log_homography"]), c.cx))
            if math.isfinite(c.cx_margin):
                cx_rows.append([c.cx_margin])
                cx_labels.append(float(c.correct))
                cx_groups.append(q.scenario)
    x, y = np.asarray(rows, np.float64), np.asarray(labels)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    coef, intercept = _logistic((x - mean) / scale, y, _weights(groups))
    cx_coef, cx_intercept = _logistic(np.asarray(cx_rows), np.asarray(cx_labels), _weights(cx_groups))
    typical = np.median(np.asarray(wrong_stats), axis=0) if wrong_stats else np.zeros(3)
    return TrustModel(coef=dict(zip(FEATURES, map(float, coef))), intercept=intercept,
                      mean=dict(zip(FEATURES, map(float, mean))), scale=dict(zip(FEATURES, map(float, scale))),
                      cx_coef=(cx_intercept, float(cx_coef[0])),
                      typical_other=OtherPlace(float(typical[0]), float(typical[1]), float(typical[2]), exists=False),
                      threshold=threshold, meta=dict(meta or {}))


def inliers(c: CandidateOutcome) -> int:
    """The RANSAC inliers of a verified candidate (its evidence stores log1p of them)."""
    return round(math.expm1(c.features["log_inliers"]))


def passes_gate(c: CandidateOutcome, min_inliers: int | None = None) -> bool:
    """Geometrically accepted, and (when given) with at least ``min_inliers`` inliers: evidence
    collected at a low ``matching.min_inliers`` scores every higher gate exactly."""
    return c.accepted and (min_inliers is None or inliers(c) >= min_inliers)


@dataclass(frozen=True)
class AnchoredPlace:
    """Whether a published frame's pose is right, as the engine anchors it (relocalization/pose.py:
    ``pose_anchor``): among the gated candidates of the winner's place whose probability reaches the
    publishing threshold, the one with the most inliers (ties keep the winner) gives the pose — or the
    route's keyframe when it is one of that candidate's near ties — so which keyframe that is, and
    whether it lies within the tolerance, depends on the threshold."""

    #: (probability, inliers, correct, is the winner, is the route's keyframe)
    pool: tuple[tuple[float, int, bool, bool, bool], ...]

    def correct_at(self, threshold: float) -> bool:
        members = [m for m in self.pool if m[3] or m[0] >= threshold]
        anchor = max(members, key=lambda m: (m[1], m[3]))
        route = [m for m in members if m[4] and m is not anchor and near_tie(m[1], anchor[1])]
        return (route[0] if route else anchor)[2]


def correct_at(ok: "bool | AnchoredPlace", threshold: float) -> bool:
    return ok.correct_at(threshold) if isinstance(ok, AnchoredPlace) else bool(ok)


def decide(outcome: QueryOutcome, model: TrustModel, min_inliers: int | None = None,
           place_radius_m: float = 15.0) -> "tuple[float, bool | AnchoredPlace]":
    """(confidence, correct) of one query under ``model``: the best-scoring verified, geometrically
    accepted candidate decides whether the engine publishes; whether the published pose is right is
    judged on the keyframe that anchors it (:class:`AnchoredPlace`, when the outcome knows the
    candidates' positions; else on the winner)."""
    gated = [c for c in outcome.checked if passes_gate(c, min_inliers)]
    scored = [(model.probability(c.features), c) for c in gated]
    best_p, best = 0.0, None
    for p, c in scored:
        if p > best_p:
            best_p, best = p, c
    if best is None:
        return 0.0, False
    if best.position is None:
        return best_p, best.correct
    here = np.asarray(best.position)

    def settled_route(c: CandidateOutcome) -> bool:  # the engine's pose_anchor(route=...) condition
        return c.keyframe_id == outcome.route_keyframe and c.features["route_support"] >= ROUTE_ANCHOR_SUPPORT

    pool = tuple((p, inliers(c), c.correct, c is best, settled_route(c)) for p, c in scored
                 if c.position is not None and np.linalg.norm(np.asarray(c.position) - here) < place_radius_m)
    return best_p, AnchoredPlace(pool)


def source(scenario: str) -> str:
    """The data set a scenario comes from ("nordland_unmapped+seq" → "nordland", "demo_fog" → "demo")."""
    return re.split(r"[_+]", scenario)[0]


def leave_one_out(outcomes: Sequence[QueryOutcome], min_inliers: int | None = None,
                  place_radius_m: float = 15.0) -> dict[str, list[tuple[float, bool]]]:
    """Per scenario: (confidence, correct) of every query under a model fitted without its whole
    data set (every scenario of the same source left out together), behind the inlier gate;
    ``place_radius_m``: the engine's trust.place_radius_m."""
    out = {}
    for held in sorted({source(q.scenario) for q in outcomes}):
        model = fit_trust([q for q in outcomes if source(q.scenario) != held], place_radius_m=place_radius_m)
        for name in sorted({q.scenario for q in outcomes if source(q.scenario) == held}):
            out[name] = [decide(q, model, min_inliers, place_radius_m) for q in outcomes if q.scenario == name]
    return out


def precision_recall(scored: Sequence[tuple[float, bool]], threshold: float) -> tuple[float, float, int, int]:
    """(precision %, recall % of all queries, published, wrong) at ``threshold``."""
    published = [correct_at(ok, threshold) for p, ok in scored if p >= threshold]
    wrong = sum(not ok for ok in published)
    precision = 100.0 * (len(published) - wrong) / len(published) if published else 100.0
    recall = 100.0 * (len(published) - wrong) / len(scored) if scored else 0.0
    return precision, recall, len(published), wrong


#: Threshold used when no threshold meets the rule (then :func:`operating_point` says so).
FALLBACK_THRESHOLD = 0.999


def operating_point(lodo: dict[str, list[tuple[float, bool]]], pooled_target: float = 99.5,
                    per_set_target: float = 99.0, min_published: int = 10) -> float | None:
    """Smallest threshold with pooled precision ≥ ``pooled_target`` and every data set publishing at
    least ``min_published`` frames at ≥ ``per_set_target`` (the rule declared before calibrating);
    None when no threshold meets it (the evidence cannot separate right from wrong well enough)."""
    pooled = [s for scored in lodo.values() for s in scored]
    for t in np.round(np.r_[np.arange(0.05, 0.995, 0.005), 0.995, 0.996, 0.997, 0.998, 0.999], 3):
        if precision_recall(pooled, t)[0] < pooled_target:
            continue
        if all(precision_recall(scored, t)[0] >= per_set_target or precision_recall(scored, t)[2] < min_published
               for scored in lodo.values()):
            return float(t)
    return None
