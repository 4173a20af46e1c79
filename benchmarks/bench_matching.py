"""Speed of the sparse matching stage at 640×480 with 500 corners and n = 10; prints one JSON object.

The dense maps are smooth random fields (Gaussian-blurred noise, re-normalised; DVF maps are
smooth the same way, through the decoder's bilinear upsampling), the query being the keyframe's
map shifted by a few pixels, so the filters keep a realistic share of the matches. Geometry runs on
a synthetic two-view scene with 30 % outliers. Times are medians over ``--repeats`` runs, in ms.

    python benchmarks/bench_matching.py [--device cpu|cuda] [--corners 500] [--repeats 5] [--threads N]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from dejavu_ros.matching import (MatchingConfig, detect_corners, match_corners, match_dense,  # noqa: E402
                                 sample_descriptors, sample_shifted, solve_pnp, verify)
from dejavu_ros.matching.matches import Matches  # noqa: E402


def timed(fn, repeats: int, sync) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        out = fn()
        sync()
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 2), out


def smooth_field(n: int, h: int, w: int, seed: int, device) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    chans = [cv2.GaussianBlur(rng.normal(size=(h, w)).astype(np.float32), (0, 0), 2.0) for _ in range(n)]
    return F.normalize(torch.from_numpy(np.stack(chans)), dim=0).to(device)


def textured_image(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 1.5)
    return cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)


def two_view_matches(n: int, outlier_share: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    k = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
    pts = np.column_stack([rng.uniform(-3, 3, n), rng.uniform(-2, 2, n), rng.uniform(4, 10, n)])
    rvec, tvec = np.array([0.02, -0.1, 0.03]), np.array([-0.5, 0.05, 0.1])
    map_xy = cv2.projectPoints(pts, np.zeros(3), np.zeros(3), k, None)[0].reshape(-1, 2)
    query_xy = cv2.projectPoints(pts, rvec, tvec, k, None)[0].reshape(-1, 2)
    query_xy += rng.normal(0, 0.5, query_xy.shape)
    bad = rng.random(n) < outlier_share
    query_xy[bad] = rng.uniform([0, 0], [640, 480], (bad.sum(), 2))
    m = Matches(query_xy.astype(np.float32), map_xy.astype(np.float32), np.arange(n), np.arange(n),
                np.zeros(n, np.float32), np.zeros(n, np.float32), "corners")
    return m, k, pts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--corners", type=int, default=500)
    parser.add_argument("--dim", type=int, default=10)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    h, w, n, r = args.height, args.width, args.dim, args.repeats
    cfg = MatchingConfig(max_corners=args.corners)

    image = textured_image(h, w, seed=0)
    out: dict = {"device": str(device), "torch_threads": torch.get_num_threads(), "size": [w, h], "dim": n,
                 "ms": {}, "matches": {}}
    ms = out["ms"]
    ms["detect_corners"], xy = timed(lambda: detect_corners(image, cfg), r, sync)
    out["corners"] = int(len(xy))
    keyframe = smooth_field(n, h + 8, w + 8, seed=1, device=device)
    dense_k, dense_q = keyframe[:, :h, :w].contiguous(), keyframe[:, 5:h + 5, 3:w + 3].contiguous()
    ms["sample_descriptors"], kdesc = timed(lambda: sample_descriptors(dense_k, xy), r, sync)
    qxy = (xy - [3, 5]).clip(0, [w - 1, h - 1]).astype(np.float32)
    ms["sample_shifted"], shifted = timed(lambda: sample_shifted(dense_q, qxy), r, sync)
    qdesc = sample_descriptors(dense_q, qxy)
    ms["match_corners"], mc = timed(lambda: match_corners(qxy, qdesc, xy, kdesc, cfg, shifted), r, sync)
    out["matches"]["corners"] = mc.counts
    for coarse in ("pooled", "exact"):
        for stride in (4, 2):
            run = dataclasses.replace(cfg, dense_coarse=coarse, dense_stride=stride)
            key = f"match_dense_{coarse}_s{stride}"
            ms[key], md = timed(lambda: match_dense(xy, kdesc, dense_q, run), r, sync)
            ok = np.abs(md.query_xy - md.map_xy + [3, 5]).max(axis=1) <= 1.0 if len(md) else np.zeros(0, bool)
            out["matches"][key] = md.counts | {"correct": int(ok.sum())}

    matches, k, pts = two_view_matches(args.corners, 0.3)
    for method in ("usac_magsac", "usac_default", "usac_accurate", "ransac", "lmeds"):
        run = dataclasses.replace(cfg, ransac=method)
        ms[f"verify_essential_{method}"], gv = timed(lambda: verify(matches, run, k, k), r, sync)
        out["matches"][f"inliers_{method}"] = gv.num_inliers
    ms["verify_fundamental_usac_magsac"], _ = timed(lambda: verify(matches, cfg), r, sync)
    ms["solve_pnp"], pnp = timed(lambda: solve_pnp(matches.query_xy, pts, k, cfg), r, sync)
    out["matches"]["pnp_inliers"] = pnp.num_inliers
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
