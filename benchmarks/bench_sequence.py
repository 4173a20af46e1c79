"""How much sequence fusion changes recall: Nordland summer map, winter queries. Prints JSON.

    python benchmarks/bench_sequence.py [--model PATH] [--first 1430] [--count 300] [--lengths 0 3 5 8]

The map holds summer frames ``first .. first+count`` (the default range is the last 20 % of
Nordland, the validation split the default model never trained on), one keyframe per frame; the
queries are the winter frames of the same places in driving order. A query is correct when the
top candidate is within ``--tolerance`` frames of the true place. Verification is off: this
measures ranking only.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

from dejavu_ros.config import DejavuConfig
from dejavu_ros.features.extractor import FeatureExtractor
from dejavu_ros.relocalization.engine import RelocalizationEngine

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nordland_64x32"


def load(season: str, index: int) -> np.ndarray:
    image = cv2.imread(str(DATA / season / f"images-{(index + 1) * 10:05d}.png"), cv2.IMREAD_COLOR)
    return cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), (256, 128), interpolation=cv2.INTER_LINEAR)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default="")
    p.add_argument("--first", type=int, default=1430)
    p.add_argument("--count", type=int, default=300)
    p.add_argument("--lengths", type=int, nargs="+", default=[0, 3, 5, 8])
    p.add_argument("--tolerance", type=int, default=2)
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not DATA.is_dir():
        print(f"Nordland data not found at {DATA}", file=sys.stderr)
        return 2
    cfg = DejavuConfig()
    cfg.features.model = args.model
    cfg.engine.verify_top_m = 0
    cfg.keyframes.min_distance_m = 0.5
    cfg.features.threads = args.threads  # the extractor sets torch's thread count from this
    fe = FeatureExtractor.from_config(cfg.features)
    places = range(args.first, args.first + args.count)
    out = {"model": fe.source, "map": f"summer {places.start}..{places.stop - 1}", "queries": "winter",
           "tolerance_frames": args.tolerance, "recall@1": {}}
    with tempfile.TemporaryDirectory() as tmp:
        cfg.node.map_path = str(Path(tmp) / "nordland.db")
        engine = RelocalizationEngine.from_config(cfg, map_mode="map", extractor=fe)
        for i in places:
            engine.add_frame(load("summer", i), float(i), [float(i), 0.0, 0.0], [0.0, 0.0, 0.0, 1.0])
        ids, positions, _ = engine.keyframe_poses()
        place_of = {int(k): int(round(pos[0])) for k, pos in zip(ids, positions)}
        queries = [load("winter", i) for i in places]
        for length in args.lengths:
            cfg.engine.sequence_length = length
            engine.update_config(cfg)
            engine.reload_map()  # clears the sequence history
            hits = 0
            for i, image in zip(places, queries):
                result = engine.relocalize(image, float(i))
                hits += abs(place_of[result.candidates[0].keyframe_id] - i) <= args.tolerance
            out["recall@1"][f"sequence_length={length}"] = round(100.0 * hits / len(queries), 1)
        engine.close()
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
