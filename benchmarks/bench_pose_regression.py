"""Absolute pose regression on frozen DVF maps against RGB (paper §4.3 / Table 2). Prints JSON.

    nice python benchmarks/bench_pose_regression.py --data DATA_DIR --threads 1 [--steps 1000] [--quick]

A small head (dejavu_ros/evaluation/pose_regression.py) is trained on one condition and tested on
another, once on the shipped model's frozen DVF maps and once, with the same layer sizes, seed and
batches, on the image itself:

- demo street (generated, 150 m): day frames every 1 m train; day, night and fog frames at
  0.5 m + every 3 m test; position in metres, rotation in degrees (the orientation is constant).
- Nordland (``DATA_DIR/nordland_64x32``): summer places 1-1430 (every 2nd) train, the winter frames
  of the same places test; 1-D position, place × 10 m.
- GRIEF (``DATA_DIR/grief_seasons``): sessions 1-6 (autumn/winter) train, 7-12 (spring/summer)
  test, at all 10 locations; target = horizontal image offset in px of the 1024-wide original.

Data sets missing under DATA_DIR are left out (and named in "skipped"). ``--quick`` (a 40 m
street, every 20th Nordland place, GRIEF sessions 1-3 against 7-9, 80 steps) checks that everything
runs; its numbers mean little.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from dejavu_ros.config import DejavuConfig
from dejavu_ros.evaluation import pose_regression as pr
from dejavu_ros.features.extractor import FeatureExtractor


def finite(value):
    """NaN (no orientation) → null, so the output is strict JSON."""
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return None if isinstance(value, float) and value != value else value


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=None, help="folder holding nordland_64x32 and grief_seasons")
    p.add_argument("--steps", type=int, default=None, help="training steps per head (default 1000, quick 150)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="small subsets and few steps (about a minute)")
    args = p.parse_args()
    torch.set_num_threads(max(1, args.threads))
    steps = args.steps or (80 if args.quick else 1000)

    cfg = DejavuConfig().features
    cfg.device, cfg.threads = "cpu", max(1, args.threads)
    extractor = FeatureExtractor.from_config(cfg)
    start = time.perf_counter()
    datasets = {"demo_street": pr.demo_street_data(30.0 if args.quick else 150.0)}
    skipped = []
    if args.data is not None and (args.data / "nordland_64x32").is_dir():
        datasets["nordland"] = pr.nordland_data(args.data / "nordland_64x32", range(1, 1431), 20 if args.quick else 2)
    else:
        skipped.append("nordland")
    if args.data is not None and (args.data / "grief_seasons").is_dir():
        sessions = ((1, 2, 3), (7, 8, 9)) if args.quick else (range(1, 7), range(7, 13))
        datasets["grief"] = pr.grief_data(args.data / "grief_seasons", *sessions)
    else:
        skipped.append("grief")
    results = pr.run_pose_regression(datasets, extractor, steps=steps, seed=args.seed)
    out = {"table": pr.table(results), "results": results, "skipped": skipped, "model": Path(extractor.source).name,
           "threads": torch.get_num_threads(), "torch": torch.__version__,
           "wall_s": round(time.perf_counter() - start, 1)}
    json.dump(finite(out), sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
