"""Route localization on a seasonal drive: single frames, sequences, the odometry filter. Prints JSON.

    python benchmarks/bench_route.py --data DATA_DIR [--places 1431-1788] [--length 10] [--modes single sequence odometry]
        [--set NAME=VALUE ...]

The shared Nordland line (nordland_64x32, see its SOURCE.txt) as a drive: the summer frames of
``--places`` are the map (a place every 10 m along a line), the winter frames the queries, in
driving order. The odometry mode gets each query's position in an odometry frame turned by 30°
and shifted, with 5 % noise on every step: only the distance travelled is used. For every mode:
top-1 recall of the engine's place hypothesis (the best CX candidate for single frames, the route's
keyframe otherwise; right within one place), and the precision and recall of the published poses.
"""
from __future__ import annotations

import argparse
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


def summarise(outcomes, mode: str) -> dict:
    hyp = [q.top1_correct if mode == "single" else bool(q.route_correct) for q in outcomes]
    published = [q.winner_correct for q in outcomes if q.relocalized]
    return {"queries": len(outcomes), "top1_recall": round(100.0 * np.mean(hyp), 1),
            "published": len(published), "wrong_published": len(published) - sum(published),
            "precision": round(100.0 * np.mean(published), 2) if published else None,
            "recall_published": round(100.0 * sum(published) / len(outcomes), 1),
            "ms_per_frame_p50": round(float(np.median([q.timings_ms.get("total", 0.0) for q in outcomes])), 1)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--places", default="1431-1788")
    p.add_argument("--length", type=int, default=10, help="engine.sequence_length of the route modes")
    p.add_argument("--modes", nargs="+", default=["single", "sequence", "odometry"],
                   choices=["single", "sequence", "odometry"])
    p.add_argument("--model", default="")
    p.add_argument("--threads", type=int, default=1)
    add_set_flag(p, "engine.route_baseline_frames=0")
    args = p.parse_args()
    config_from_sets(p, args.set)  # a bad override stops here, before the first mode runs
    torch.set_num_threads(args.threads)
    places = sc.parse_places(args.places)
    scenario = sc.nordland_route(args.data / "nordland_64x32", places, places)
    fe = FeatureExtractor.from_config(DejavuConfig().features.__class__(model=args.model, device="cpu",
                                                                        threads=args.threads))
    report = {"map": f"nordland summer {args.places}", "queries": "winter, in driving order",
              "dvf_model": shipped_name(fe.source), "modes": {}}
    for mode in args.modes:
        cfg = config_from_sets(p, args.set)
        cfg.features.device, cfg.features.model = "cpu", args.model
        cfg.engine.sequence_length = 0 if mode == "single" else args.length
        t0 = time.perf_counter()
        outcomes = cal.run_scenario(scenario, cfg, fe, progress=True,
                                    odometry=sc.simulated_odometry(scenario.queries) if mode == "odometry" else None)
        report["modes"][mode] = {**summarise(outcomes, mode), "seconds": round(time.perf_counter() - t0, 1)}
        print(mode, report["modes"][mode], file=sys.stderr)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
