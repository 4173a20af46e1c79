"""Overlap and relative scale on synthetic zoom pairs of held-out images; prints JSON.

    python benchmarks/bench_overlap.py --data DATA_DIR [--pairs 24] [--head H] [--threads 1]

DATA_DIR holds tilde_webcam, oxblue_webcam, tum_fr3_sequence and grief_seasons (each folder's
SOURCE.txt says where a user gets it); the demo street is generated. Pairs (dejavu_ros/evaluation/
overlap.py): a view A and a zoom B inside it by 1–3× (half of them swapped, so scales 1/3–3), on the
webcams B from another frame of the camera (day ↔ night). Methods, as ``dejavu-ros overlap --method``:

* ``sift``: a similarity fitted by RANSAC on OpenCV SIFT matches;
* ``matches``: the DVF pyramid matcher (a similarity fitted by RANSAC over a 4-level scale ladder);
* ``dense``: the dense scale search (the two DVF maps correlated over zoom and shift);
* ``boxes``: the box-embedding head alone (what every engine candidate carries);
* ``auto``: sift, else matches, else dense (when sure), else boxes (the command's default);
* ``constant``: scale 1 and overlaps ½ for every pair (what knowing nothing scores).

Reported per method, overall and per source: the fraction of pairs whose scale is within 25 %
(target ≥ 0.8), NSO errors, median ms per pair.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from dejavu_ros.config import DejavuConfig
from dejavu_ros.evaluation.overlap import held_out_scenes, score, zoom_pairs
from dejavu_ros.features.extractor import FeatureExtractor
from dejavu_ros.matching.view_overlap import ViewOverlap
from dejavu_ros.relocalization.overlap import estimate_overlap, load_box_head


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--model", default="", help="DVF weights (default: the shipped model)")
    ap.add_argument("--head", default="", help="overlap head (default: the shipped one)")
    ap.add_argument("--pairs", type=int, default=24, help="pairs per source")
    ap.add_argument("--methods", default="constant,sift,matches,dense,boxes,auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = DejavuConfig()
    cfg.features.model = args.model
    extractor = FeatureExtractor.from_config(cfg.features)
    head = load_box_head(args.head, extractor.descriptor_dim)
    pairs = zoom_pairs(held_out_scenes(args.data), args.pairs, np.random.default_rng(args.seed))
    out = {"pairs": len(pairs), "tolerance": 0.25, "head": args.head or "shipped", "methods": {}}
    for method in args.methods.split(","):
        if method == "constant":
            out["methods"][method] = score(pairs, lambda a, b: ViewOverlap(0.5, 0.5, 1.0, method="constant"))
            continue
        if method == "boxes" and head is None:
            print(f"{method}: skipped (no overlap head)", file=sys.stderr)
            continue
        out["methods"][method] = score(pairs, lambda a, b, m=method: estimate_overlap(a, b, extractor, cfg, head, m))
        print(f"{method}: scale within 25 % on {out['methods'][method]['scale_within']:.3f} of pairs",
              file=sys.stderr)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
