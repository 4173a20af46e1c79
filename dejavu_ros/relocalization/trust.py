"""The trust decision: may a frame be published as relocalized, and how sure is it?

A relocalization is a claim the SLAM stack acts on, so the test is at the level of *places*, not a
fixed inlier count: a verified keyframe's geometric and contextual evidence is compared with the
strongest evidence of any *other* place (keyframes farther than ``trust.place_radius_m`` — the
same place seen on another day is not a competitor). An epipolar fit finds a few dozen inliers
almost anywhere; the true place stands out against the best wrong one.

The evidence becomes a probability through a logistic model calibrated on labelled relocalizations
(``benchmarks/bench_trust.py`` fits it on the shared data sets and writes
``models/trust_default.json``): the features below, one linear score, a sigmoid. A second, CX-only
model gives every unverified candidate a probability too. A map with a single place has no
runner-up: its evidence is then compared with that of a typical wrong place (the calibration's
median), so only evidence that would beat a typical wrong place is published.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DejavuError
from ..resources import models_dir

#: per-keyframe statistics (GeometricVerification.stats) the evidence is made of
GEOMETRY_KEYS = ("inliers", "homography_inliers", "coverage", "inliers_half", "essential", "cheirality",
                 "inlier_ratio")
#: the features of the geometric model, in order
FEATURES = ("log_inliers", "inlier_margin", "log_homography", "homography_margin", "cx_margin", "coverage",
            "tightness", "inlier_ratio", "essential", "cheirality", "route_active", "route_support")
#: pseudo-count of the inlier margins: a minimal sample's worth of chance inliers, so a runner-up
#: with 0 inliers against a winner with 20 is a margin of log(28/8), not log(21)
CHANCE_INLIERS = 8.0


class TrustModelError(DejavuError):
    """A trust calibration file is missing or malformed (the message names the file)."""


def default_trust_path() -> Path:
    return models_dir() / "trust_default.json"


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))


@dataclass
class OtherPlace:
    """The strongest evidence of the places other than a candidate's (the runner-up)."""

    inliers: float = 0.0
    homography_inliers: float = 0.0
    cx: float = 0.0
    exists: bool = True  # False: the map has no other place (a typical wrong place stands in)


def features(stats: dict[str, float], cx: float, other: OtherPlace,
             route_support: float | None = None) -> dict[str, float]:
    """The geometric model's features of one verified candidate against the other places.

    ``route_support``: how strongly the recent frames (relocalization/route.py) back this
    candidate's place, in [0, 1] (0: the route points elsewhere); None when route localization is off.
    """
    inliers = stats.get("inliers", 0.0)
    homography = stats.get("homography_inliers", 0.0)
    c = CHANCE_INLIERS
    return {
        "log_inliers": math.log1p(inliers),
        "inlier_margin": math.log((inliers + c) / (other.inliers + c)),
        "log_homography": math.log1p(homography),
        "homography_margin": math.log((homography + c) / (other.homography_inliers + c)),
        "cx_margin": math.log(max(cx, 1e-6)) - math.log(max(other.cx, 1e-6)),
        "coverage": stats.get("coverage", 0.0),
        "tightness": stats.get("inliers_half", 0.0) / max(inliers, 1.0),
        "inlier_ratio": stats.get("inlier_ratio", 0.0),
        "essential": stats.get("essential", 0.0),
        "cheirality": stats.get("cheirality", 0.0),
        "route_active": 0.0 if route_support is None else 1.0,
        "route_support": 0.0 if route_support is None else float(route_support),
    }


@dataclass
class TrustModel:
    """Logistic calibration of the evidence (see the module docstring)."""

    coef: dict[str, float]  # feature → weight (features standardised by mean / scale)
    intercept: float
    mean: dict[str, float]
    scale: dict[str, float]
    cx_coef: tuple[float, float]  # CX-only model: intercept, weight of cx_margin
    typical_other: OtherPlace  # runner-up evidence assumed where the map has no other place
    threshold: float  # the calibration's operating point (precision target, README)
    meta: dict = field(default_factory=dict)

    @classmethod
    def neutral(cls, typical_other: OtherPlace | None = None) -> "TrustModel":
        """Every probability ½: what the calibration runs the engine with to collect evidence."""
        zeros = {k: 0.0 for k in FEATURES}
        return cls(coef=dict(zeros), intercept=0.0, mean=dict(zeros), scale={k: 1.0 for k in FEATURES},
                   cx_coef=(0.0, 0.0), typical_other=typical_other or OtherPlace(exists=False), threshold=0.5,
                   meta={"neutral": True})

    @property
    def dvf_fingerprint(self) -> str:
        """The DVF model whose evidence this calibration was fitted on ("" = not recorded)."""
        return str(self.meta.get("dvf_fingerprint") or "")

    def probability(self, x: dict[str, float]) -> float:
        z = self.intercept + sum(self.coef[k] * (x[k] - self.mean[k]) / self.scale[k] for k in self.coef)
        return _sigmoid(z)

    def cx_probability(self, cx_margin: float) -> float:
        a, b = self.cx_coef
        return _sigmoid(a + b * cx_margin)

    # -- files ---------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {"features": list(self.coef), "coef": self.coef, "intercept": self.intercept, "mean": self.mean,
                "scale": self.scale, "cx_coef": list(self.cx_coef),
                "typical_other": {"inliers": self.typical_other.inliers,
                                  "homography_inliers": self.typical_other.homography_inliers,
                                  "cx": self.typical_other.cx},
                "threshold": self.threshold, "meta": self.meta}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path | None = None) -> "TrustModel":
        path = Path(path) if path else default_trust_path()
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise TrustModelError(f"trust calibration not found: {path}") from None
        except (OSError, ValueError) as exc:
            raise TrustModelError(f"trust calibration {path}: not readable JSON ({exc})") from None
        try:
            coef = {str(k): float(v) for k, v in data["coef"].items()}
            unknown = sorted(set(coef) - set(FEATURES))
            if unknown:
                raise ValueError(f"unknown feature(s) {', '.join(unknown)}")
            typical = data["typical_other"]
            model = cls(coef=coef, intercept=float(data["intercept"]),
                        mean={k: float(data["mean"][k]) for k in coef},
                        scale={k: float(data["scale"][k]) or 1.0 for k in coef},
                        cx_coef=(float(data["cx_coef"][0]), float(data["cx_coef"][1])),
                        typical_other=OtherPlace(float(typical["inliers"]), float(typical["homography_inliers"]),
                                                 float(typical["cx"]), exists=False),
                        threshold=float(data["threshold"]), meta=dict(data.get("meta", {})))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise TrustModelError(f"trust calibration {path}: malformed ({exc})") from None
        if not all(math.isfinite(v) for v in [model.intercept, *coef.values(), *model.cx_coef]):
            raise TrustModelError(f"trust calibration {path}: non-finite coefficients")
        return model


def calibration_mismatch(model: TrustModel, dvf_fingerprint: str) -> str:
    """Why ``model``'s probabilities are not calibrated for the DVF model ``dvf_fingerprint`` ("" when
    they are, or when the calibration does not record its model). A calibration is fitted on one
    network's evidence; nothing shows that it holds for another network's inlier counts and margins."""
    fitted = model.dvf_fingerprint
    if model.meta.get("neutral") or not fitted or fitted == dvf_fingerprint:
        return ""
    return (f"the trust calibration was fitted on DVF model {fitted}, the loaded model is {dvf_fingerprint}: "
            f"its confidences are not calibrated for this model and may trust wrong places; calibrate one "
            f"(from a source checkout: python benchmarks/bench_trust.py --data DATA_DIR --model MODEL --write "
            f"MY_TRUST.json) and set trust.model")


def same_place(positions: np.ndarray, radius_m: float) -> np.ndarray:
    """K×K bool: candidates whose keyframes lie closer than ``radius_m`` (the same place)."""
    p = np.asarray(positions, np.float64).reshape(-1, 3)
    return np.linalg.norm(p[:, None] - p[None], axis=2) < radius_m


def other_place(k: int, near: np.ndarray, cx: np.ndarray, stats: dict[int, dict[str, float]],
                typical: OtherPlace) -> OtherPlace:
    """Strongest evidence among candidates outside candidate ``k``'s place.

    ``near`` is :func:`same_place` of the candidates, ``cx`` their CX scores, ``stats`` the
    verification statistics of the verified ones (by candidate index). No other place → ``typical``.
    """
    others = np.flatnonzero(~near[k])
    if len(others) == 0:
        return typical
    verified = [stats[j] for j in others if j in stats]
    return OtherPlace(inliers=max((s.get("inliers", 0.0) for s in verified), default=0.0),
                      homography_inliers=max((s.get("homography_inliers", 0.0) for s in verified), default=0.0),
                      cx=float(cx[others].max()))


def runner_ups(near: np.ndarray, verified: list[int], places: int) -> list[int]:
    """The best candidate of each of the next ``places`` places other than the top candidate's, that
    ``verified`` (candidate indices, best first) does not already cover."""
    covered = [k for k in verified if not near[0, k]]
    out: list[int] = []
    for k in range(near.shape[0]):
        if len(covered) + len(out) >= places:
            break
        if near[0, k] or any(near[k, j] for j in covered + out):
            continue
        out.append(k)
    return out
