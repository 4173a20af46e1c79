"""Calibrate and measure the trust decision on the public data sets; prints JSON, writes the PR curve.

    python benchmarks/bench_trust.py --data DATA_DIR [--model M] [--out DIR] [--write models/trust_default.json]

DATA_DIR holds nordland_64x32, grief_seasons, tilde_webcam, oxblue_webcam, tum_fr3_sequence and
vprbench_corridor (each folder's SOURCE.txt says where a user gets it); the demo street is
generated. Every scenario runs through the engine exactly as a user's relocalization would, with a
neutral trust model (every probability ½) to collect the evidence — frame by frame, and the routes
again with route localization on (``+seq``) and with odometry (``+odom``); then:

* per data set, probabilities from a model fitted *without* it (leave one data set out): the honest
  precision / recall of the decision, plotted as a precision–recall curve (``--out/trust_pr.png``); a
  published frame is right when the keyframe the engine anchors its pose on shows the query's place
  (calibration.AnchoredPlace: the most inliers among the trusted keyframes of the winner's place);
* the operating point by the rule declared before the first run: the smallest threshold with pooled
  precision ≥ 99.5 % and every data set that publishes ≥ 10 frames at ≥ 99 %;
* the final model fitted on everything, written with ``--write``;
* the inlier gate (``matching.min_inliers``): evidence is collected at ``--collect-min-inliers`` and
  every gate of ``--gates`` is scored on it; the one with the highest pooled recall at its operating
  point is chosen (declared with the rule) and recorded in the model;
* the previous rule (≥ 20 inliers at ≥ 25 %, best of the top 3 by inliers) in the same run.

The raw evidence is saved as ``--out/evidence.json`` so fits can be redone with ``--from-evidence``.
``--score-trust MODEL.json`` also scores that calibration as it is (its own threshold and inlier
gate, no refit) on the evidence: what a user gets who runs the shipped model under another
configuration (``--set features.precision=bf16``, another backend) — compare with the same scoring
of the evidence collected under the configuration it was fitted on.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from _config import add_set_flag, config_from_sets
from dejavu_ros.config import DejavuConfig
from dejavu_ros.resources import shipped_name
from dejavu_ros.evaluation import calibration as cal
from dejavu_ros.evaluation import scenarios as sc
from dejavu_ros.features.extractor import FeatureExtractor
from dejavu_ros.relocalization.trust import TrustModel


def scenarios(data: Path, quick: bool, street_seed: int) -> list:
    every = 4 if quick else 1
    nordland = data / "nordland_64x32"
    out = [sc.nordland_route(nordland, range(1431, 1789), range(1431, 1789), "nordland", every=every),
           sc.nordland_route(nordland, range(1611, 1789), range(1431, 1601), "nordland_unmapped", every=2 * every),
           sc.grief_sessions(data / "grief_seasons"),
           sc.webcams(data / "tilde_webcam", data / "oxblue_webcam", queries_per_camera=6 if quick else 12),
           sc.corridor(data / "vprbench_corridor")]
    out += [sc.demo_street(c, length_m=150.0, seed=street_seed) for c in ("day", "fog", "night")]
    foreign = [f for s in out if s.name in ("webcams", "grief") for f in s.queries[:: 6 if quick else 3]]
    out.append(sc.tum_room(data / "tum_fr3_sequence", foreign=foreign))
    return out


def old_rule(q: cal.QueryOutcome) -> tuple[bool, bool]:
    """The rule before the trust decision: the verified candidate with most inliers, if it has ≥ 20
    inliers at ≥ 25 % (and passes the geometric checks)."""
    best = max(q.verified, key=lambda c: (cal.passes_gate(c, 20), np.expm1(c.features["log_inliers"])), default=None)
    return (best is not None and cal.passes_gate(best, 20)), (best is not None and best.correct)


#: scenarios driven as routes (queries in driving order) are also run with route localization on;
#: those with metric positions also with odometry (bench_route.py's noisy, rotated odometry)
ROUTES = ("nordland", "nordland_unmapped", "corridor", "demo_day", "demo_fog", "demo_night", "tum")
ODOMETRY = ("nordland", "nordland_unmapped", "demo_day", "demo_fog", "demo_night")


def _run(s, cfg: DejavuConfig, fe: FeatureExtractor, model: TrustModel, mode: str, length: int):
    run_cfg = dataclasses.replace(cfg, engine=dataclasses.replace(cfg.engine, sequence_length=0 if mode == "single"
                                                                   else length))
    t0 = time.perf_counter()
    out = cal.run_scenario(s, run_cfg, fe, model, progress=True,
                           odometry=sc.simulated_odometry(s.queries) if mode == "odom" else None)
    name = s.name if mode == "single" else f"{s.name}+{mode}"
    for q in out:
        q.scenario = name
    print(f"{name}: {len(s.map_frames)} keyframes, {len(s.queries)} queries, {time.perf_counter() - t0:.0f} s",
          file=sys.stderr)
    return out


def collect(data: Path, cfg: DejavuConfig, fe: FeatureExtractor, quick: bool, length: int,
            street_seed: int) -> list[cal.QueryOutcome]:
    found = scenarios(data, quick, street_seed)
    outcomes = []
    for s in (s for s in found if s.name != "tum"):
        outcomes += _run(s, cfg, fe, TrustModel.neutral(), "single", length)
    typical = cal.fit_trust(outcomes).typical_other  # a one-place map's stand-in runner-up
    neutral = TrustModel.neutral(typical)
    tum = next(s for s in found if s.name == "tum")
    outcomes += _run(tum, cfg, fe, neutral, "single", length)
    for s in found:
        if s.name in ROUTES:
            outcomes += _run(s, cfg, fe, neutral, "seq", length)
        if s.name in ODOMETRY:
            outcomes += _run(s, cfg, fe, neutral, "odom", length)
    return outcomes


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="folder with the data sets")
    p.add_argument("--model", default="", help="DVF weights (default: the shipped model)")
    p.add_argument("--out", type=Path, default=Path("trust_out"))
    p.add_argument("--write", type=Path, help="write the calibrated trust model here")
    p.add_argument("--from-evidence", type=Path, help="refit from a saved evidence.json instead of running")
    p.add_argument("--quick", action="store_true", help="a quarter of the queries")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--length", type=int, default=10, help="engine.sequence_length of the route runs")
    p.add_argument("--street-seed", type=int, default=sc.DEMO_STREET_SEED,
                   help=f"the generated street ({sc.DEMO_STREET_SEED}: the one every calibration was fitted on; "
                   "another seed is a street no threshold was chosen on)")
    p.add_argument("--collect-min-inliers", type=int, default=12,
                   help="matching.min_inliers while collecting (the lowest gate scored)")
    add_set_flag(p, "matching.keypoint_head=H")
    p.add_argument("--gates", type=lambda v: [int(x) for x in v.split(",")], default=[12, 16, 20],
                   help="matching.min_inliers gates to score; the best by the declared rule is chosen")
    p.add_argument("--score-trust", type=Path, help="also score this trust model as it is (no refit) on the evidence")
    args = p.parse_args()
    if min(args.gates) < args.collect_min_inliers:
        p.error("--gates must not go below --collect-min-inliers (lower gates were not collected)")
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    cfg = config_from_sets(p, args.set)
    engine_gate = cfg.matching.min_inliers  # what the engine gates with: --score-trust's default
    cfg.matching.min_inliers = args.collect_min_inliers
    cfg.features.model, cfg.features.device, cfg.features.threads = args.model, "cpu", args.threads
    fe = FeatureExtractor.from_config(cfg.features)
    if args.from_evidence:
        outcomes = [_outcome_from_dict(d) for d in json.loads(args.from_evidence.read_text())]
    else:
        outcomes = collect(args.data, cfg, fe, args.quick, args.length, args.street_seed)
        (args.out / "evidence.json").write_text(json.dumps([dataclasses.asdict(q) for q in outcomes]))
    gates = {}
    for gate in args.gates:  # the inlier gate before the decision, scored on the same evidence
        lodo_g = cal.leave_one_out(outcomes, gate, cfg.trust.place_radius_m)
        t = cal.operating_point(lodo_g)
        meets = t is not None
        t = t if meets else cal.FALLBACK_THRESHOLD
        precision, recall, published, wrong = cal.precision_recall([s for v in lodo_g.values() for s in v], t)
        gates[gate] = {"threshold": t, "meets_rule": meets, "pooled_recall": round(recall, 2),
                       "pooled_precision": round(precision, 2), "published": published, "wrong": wrong,
                       "lodo": lodo_g}
    # declared rule: among the gates whose operating point meets the precision rule, the highest
    # pooled leave-one-out recall (ties: the higher gate); if none meets it, the most precise
    gate = max(gates, key=lambda g: (gates[g]["meets_rule"], gates[g]["pooled_recall"] if gates[g]["meets_rule"]
                                     else gates[g]["pooled_precision"], g))
    if not gates[gate]["meets_rule"]:
        print(f"warning: no inlier gate meets the precision rule; gate {gate} at p >= {cal.FALLBACK_THRESHOLD}",
              file=sys.stderr)
    lodo, threshold = gates[gate]["lodo"], gates[gate]["threshold"]
    model = cal.fit_trust(outcomes, threshold, place_radius_m=cfg.trust.place_radius_m, meta={
        "dvf_model": shipped_name(fe.source), "dvf_fingerprint": fe.fingerprint, "queries": len(outcomes),
        "data_sets": sorted(lodo), "min_inliers": gate,
        "rule": "smallest threshold: pooled leave-one-data-set-out precision >= 99.5 %, every data set "
                "publishing >= 10 frames >= 99 %; inlier gate with the highest pooled recall there"})
    report = {"threshold": threshold, "min_inliers": gate, "dvf_model": shipped_name(fe.source),
              "street_seed": None if args.from_evidence else args.street_seed,
              "gates": {g: {k: v for k, v in r.items() if k != "lodo"} for g, r in gates.items()},
              "per_data_set": {}}
    pooled = [s for v in lodo.values() for s in v]
    for name, scored in sorted(lodo.items()) + [("pooled", pooled)]:
        qs = [q for q in outcomes if name in ("pooled", q.scenario)]
        old = [old_rule(q) for q in qs]
        published_old = [ok for pub, ok in old if pub]
        prec, rec, n_pub, wrong = cal.precision_recall(scored, threshold)  # behind the chosen gate
        report["per_data_set"][name] = {
            "queries": len(scored), "published": n_pub, "wrong": wrong, "precision": round(prec, 2),
            "recall": round(rec, 2), "top1_correct": round(100.0 * np.mean([q.candidates[0].correct for q in qs]), 2),
            "old_rule": {"published": len(published_old), "wrong": len(published_old) - sum(published_old),
                         "precision": round(100.0 * np.mean(published_old), 2) if published_old else None,
                         "recall": round(100.0 * sum(published_old) / len(qs), 2)}}
    report["coefficients"] = model.coef
    if args.score_trust:
        trust = TrustModel.load(args.score_trust)
        gate = int(trust.meta.get("min_inliers") or engine_gate)  # the gate it was calibrated at, else the engine's
        if gate < args.collect_min_inliers:
            p.error(f"--score-trust: the model's inlier gate {gate} is below --collect-min-inliers "
                    f"{args.collect_min_inliers} (lower gates were not collected)")
        report["scored_as_is"] = score_as_is(outcomes, trust, gate, cfg.trust.place_radius_m)
        report["scored_as_is"]["model"] = str(args.score_trust)
    _plot(lodo, threshold, args.out / "trust_pr.png")
    (args.out / "trust_report.json").write_text(json.dumps(report, indent=1))
    if args.write:
        model.save(args.write)
        report["written"] = str(args.write)
    print(json.dumps(report, indent=1))
    return 0


def score_as_is(outcomes, model: TrustModel, gate: int, place_radius_m: float) -> dict:
    """Published / wrong per scenario and pooled under ``model`` at its own threshold behind the inlier
    ``gate``."""
    out = {"threshold": model.threshold, "min_inliers": gate, "per_data_set": {}}
    by_name: dict[str, list] = {}
    for q in outcomes:
        by_name.setdefault(q.scenario, []).append(cal.decide(q, model, gate, place_radius_m))
    for name, scored in sorted(by_name.items()) + [("pooled", [s for v in by_name.values() for s in v])]:
        prec, rec, n_pub, wrong = cal.precision_recall(scored, model.threshold)
        out["per_data_set"][name] = {"queries": len(scored), "published": n_pub, "wrong": wrong,
                                     "precision": round(prec, 2), "recall": round(rec, 2)}
    return out


def _outcome_from_dict(d: dict) -> cal.QueryOutcome:
    d = dict(d)
    d["candidates"] = [cal.CandidateOutcome(**c) for c in d["candidates"]]
    return cal.QueryOutcome(**d)


def _plot(lodo: dict, threshold: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.5, 5))
    grid = np.round(np.arange(0.0, 1.0, 0.0025), 4)
    by_source: dict[str, list] = {}
    for name, scored in lodo.items():  # the frame-by-frame, sequence and odometry runs of a data set together
        by_source.setdefault(cal.source(name), []).extend(scored)
    curves = sorted(by_source.items()) + [("pooled", [s for v in lodo.values() for s in v])]
    for name, scored in curves:
        pts = [cal.precision_recall(scored, t) for t in grid]
        ax.plot([r for _, r, n, _ in pts if n], [p for p, _, n, _ in pts if n], lw=2.5 if name == "pooled" else 1.4,
                label=name, color="black" if name == "pooled" else None)
    prec, rec, _, _ = cal.precision_recall([s for v in lodo.values() for s in v], threshold)
    ax.scatter([rec], [prec], s=60, c="red", zorder=5, label=f"operating point p ≥ {threshold:.3f}")
    ax.set_xlabel("recall: queries published with the right place (%)")
    ax.set_ylabel("precision of published poses (%)")
    ax.set_ylim(50, 100.5)
    ax.set_xlim(0, 100)
    ax.set_title("Trust decision: each data set scored by a calibration fitted without it", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
