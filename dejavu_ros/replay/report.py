"""Per-frame records of a replay and the summary printed at the end (latency, recall, errors)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from ..relocalization.result import RelocalizationResult

RECALL_RADII_M = (5.0, 10.0)


@dataclass
class FrameRecord:
    """One line of ``frames.jsonl``: positions in metres (map frame), errors against ground truth."""

    stamp: float
    status: str
    timings_ms: dict
    best_keyframe: int | None = None  # the keyframe the result is about (the verified one, else the top candidate)
    inliers: int = 0  # of best_keyframe's verification
    verified: int = 0  # keyframes verified (best candidates, the route's, runner-up places): verification's cost
    confidence: float = 0.0  # calibrated probability that best_keyframe shows the query's place
    cx_score: float | None = None  # best_keyframe's contextual similarity
    overlap: float | None = None  # fraction of the query's view best_keyframe shows (None: unknown)
    scale: float | None = None  # how much larger the query shows things than best_keyframe
    route_keyframe: int | None = None  # where the recent frames say the camera is (sequence / odometry)
    route_support: float = 0.0
    route_error_m: float | None = None  # route_keyframe vs ground truth
    pose_source: str | None = None  # pnp, relative_rotation or keyframe when relocalized
    position_error_m: float | None = None  # verified pose vs ground truth
    angle_error_deg: float | None = None
    top1_error_m: float | None = None  # best candidate keyframe vs ground truth
    top1_position: list | None = None
    pose_position: list | None = None
    message: str = ""

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


def frame_record(result: RelocalizationResult, gt=None) -> FrameRecord:
    """Summarise one result; ``gt`` is a pose sample (position, orientation) or None."""
    rec = FrameRecord(stamp=result.stamp, status=str(result.status), timings_ms=dict(result.timings_ms),
                      best_keyframe=result.keyframe_id, confidence=round(float(result.confidence), 4),
                      route_keyframe=result.route_keyframe, route_support=round(float(result.route_support), 4),
                      verified=len(result.evidence), message=result.message)
    if result.candidates:
        rec.top1_position = [float(v) for v in result.candidates[0].position]
        shown = result.candidate(result.keyframe_id)
        rec.cx_score = None if shown is None else round(float(shown.cx_score), 5)
        if shown is not None and np.isfinite(shown.overlap) and np.isfinite(shown.scale):
            rec.overlap, rec.scale = round(float(shown.overlap), 4), round(float(shown.scale), 4)
    if result.pose is not None:
        rec.pose_position = [float(v) for v in result.pose.position]
        rec.pose_source = str(result.pose.source)
    if result.verification is not None:
        rec.inliers = result.verification.num_inliers
    if gt is not None:
        if result.candidates:
            rec.top1_error_m = float(np.linalg.norm(result.candidates[0].position - gt.position))
        if result.route_position is not None:
            rec.route_error_m = float(np.linalg.norm(result.route_position - gt.position))
        if result.pose is not None:
            rec.position_error_m = float(np.linalg.norm(result.pose.position - gt.position))
            rel = Rotation.from_quat(result.pose.orientation).inv() * Rotation.from_quat(gt.orientation)
            rec.angle_error_deg = float(np.degrees(rel.magnitude()))
    return rec


@dataclass
class ReplaySummary:
    records: list[FrameRecord] = field(default_factory=list)
    errors: dict = field(default_factory=dict)  # per-frame problems, counted by message
    damage: str = ""
    trust_mismatch: str = ""  # the engine's: why its trust calibration does not fit the model ("" = it does)

    def as_dict(self) -> dict:
        recs = self.records
        n = len(recs)
        out = {"frames": n, "frame_errors": sum(self.errors.values()), "errors": dict(self.errors),
               "relocalized": sum(r.status == "relocalized" for r in recs),
               "relocalized_percent": 100.0 * sum(r.status == "relocalized" for r in recs) / n if n else 0.0,
               "latency_ms": _latency(recs), "damage": self.damage,
               "verified_per_frame": float(np.mean([r.verified for r in recs])) if n else 0.0,
               "trust_mismatch": self.trust_mismatch}
        with_gt = [r for r in recs if r.top1_error_m is not None or r.position_error_m is not None]
        if with_gt:
            out["ground_truth_frames"] = len(with_gt)
            for radius in RECALL_RADII_M:
                ok = sum(r.position_error_m is not None and r.position_error_m <= radius for r in with_gt)
                top1 = sum(r.top1_error_m is not None and r.top1_error_m <= radius for r in with_gt)
                out[f"recall@{radius:g}m"] = 100.0 * ok / len(with_gt)
                out[f"top1_recall@{radius:g}m"] = 100.0 * top1 / len(with_gt)
            pos = [r.position_error_m for r in with_gt if r.position_error_m is not None]
            ang = [r.angle_error_deg for r in with_gt if r.angle_error_deg is not None]
            if pos:
                out["position_error_m_median"] = float(np.median(pos))
                out["angle_error_deg_median"] = float(np.median(ang))
        return out


def _latency(records: list[FrameRecord]) -> dict:
    stages = sorted({k for r in records for k in r.timings_ms})
    out = {}
    for stage in stages:
        values = [r.timings_ms[stage] for r in records if stage in r.timings_ms]
        out[stage] = {"p50": float(np.percentile(values, 50)), "p99": float(np.percentile(values, 99))}
    return out


def format_summary(summary: dict) -> str:
    lines = [f"frames: {summary['frames']}  relocalized: {summary['relocalized']} "
             f"({summary['relocalized_percent']:.1f} %)  frame errors: {summary['frame_errors']}"]
    for stage, v in summary["latency_ms"].items():
        lines.append(f"  {stage:<13} p50 {v['p50']:8.1f} ms   p99 {v['p99']:8.1f} ms")
    if summary.get("verified_per_frame"):
        lines.append(f"  keyframes verified per frame: {summary['verified_per_frame']:.2f}")
    if "ground_truth_frames" in summary:
        lines.append("  " + "  ".join(f"{k}: {summary[k]:.1f} %" for k in summary if "recall@" in k))
        if "position_error_m_median" in summary:
            lines.append(f"  median error of relocalized frames: {summary['position_error_m_median']:.2f} m, "
                         f"{summary['angle_error_deg_median']:.1f} deg")
    if summary.get("damage"):
        lines.append(f"  bag damaged: {summary['damage']}")
    if summary.get("trust_mismatch"):
        lines.append(f"  WARNING: {summary['trust_mismatch']}")
    return "\n".join(lines)
