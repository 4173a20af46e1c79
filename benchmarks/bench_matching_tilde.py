"""Cross-condition sparse matching on the TILDE webcams: correct matches, darkest vs brightest frame.

The five TILDE webcams are fixed, so pixel (x, y) shows the same point in every frame of a scene:
a match (xq, yq) <-> (xm, ym) is correct iff |xq - xm| and |yq - ym| are within ``--tolerance`` px.
For each scene the brightest frame (mean grey) plays the keyframe, the darkest the query, and
three matchers run on the pair:

* ``corners``: DVF corner-to-corner (MNN + ratio + stability), the paper's direction;
* ``dense``: the keyframe's corners searched over every pixel of the query's DVF map
  (ratio + reciprocity + stability), once with the pooled and once with the exact coarse search;
* ``sift``: OpenCV SIFT detector + descriptor, Lowe ratio test (0.8), as a reference.

Images larger than ``--max-width`` × ``--max-height`` are centre-cropped (the same crop for both
frames, so pixel alignment holds). Prints one JSON object.

    python benchmarks/bench_matching_tilde.py [--model models/dvf_default.safetensors] [--threads N]
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from dejavu_ros.features.config import FeatureConfig  # noqa: E402
from dejavu_ros.features.extractor import FeatureExtractor  # noqa: E402
from dejavu_ros.matching import (MatchingConfig, corner_features, detect_corners,  # noqa: E402
                                 match_to_keyframe)
from dejavu_ros.resources import default_model_path  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "tilde_webcam"


def load_extractor(model: str, threads: int = 1) -> tuple[FeatureExtractor, str]:
    path = Path(model) if model else default_model_path()
    if path.is_file():
        return FeatureExtractor.from_config(FeatureConfig(model=str(path), device="cpu", threads=threads)), str(path)
    return FeatureExtractor.random(seed=0), f"UNTRAINED network (random init, seed 0): {path} not found"


def centre_crop(image: np.ndarray, width: int, height: int) -> np.ndarray:
    h, w = image.shape[:2]
    y0, x0 = max(0, (h - height) // 2), max(0, (w - width) // 2)
    return image[y0:y0 + height, x0:x0 + width]


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"cannot read {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def darkest_and_brightest(data: Path, scene: str, files: list[str]) -> tuple[str, float, str, float]:
    means = []
    for f in files:
        gray = cv2.imread(str(data / f), cv2.IMREAD_GRAYSCALE)
        means.append(float(gray.mean()))
    lo, hi = int(np.argmin(means)), int(np.argmax(means))
    return files[lo], means[lo], files[hi], means[hi]


def score(query_xy: np.ndarray, map_xy: np.ndarray, tolerance: float) -> dict:
    if len(query_xy) == 0:
        return {"matches": 0, "correct": 0, "precision": 0.0}
    ok = np.all(np.abs(np.asarray(query_xy) - np.asarray(map_xy)) <= tolerance, axis=1)
    return {"matches": int(len(ok)), "correct": int(ok.sum()), "precision": round(float(ok.mean()), 3)}


def sift_matches(query: np.ndarray, keyframe: np.ndarray, max_features: int, ratio: float):
    sift = cv2.SIFT_create(nfeatures=max_features)
    kq, dq = sift.detectAndCompute(cv2.cvtColor(query, cv2.COLOR_RGB2GRAY), None)
    km, dm = sift.detectAndCompute(cv2.cvtColor(keyframe, cv2.COLOR_RGB2GRAY), None)
    if dq is None or dm is None or len(dm) < 2:
        return np.zeros((0, 2)), np.zeros((0, 2)), len(kq), len(km)
    pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(dq, dm, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < ratio * p[1].distance]
    q = np.array([kq[m.queryIdx].pt for m in good]).reshape(-1, 2)
    m = np.array([km[m.trainIdx].pt for m in good]).reshape(-1, 2)
    return q, m, len(kq), len(km)


def run_scene(extractor, data: Path, scene: str, files: list[str], cfg: MatchingConfig, args) -> dict:
    dark, dark_mean, bright, bright_mean = darkest_and_brightest(data, scene, files)
    query = centre_crop(read_rgb(data / dark), args.max_width, args.max_height)
    keyframe = centre_crop(read_rgb(data / bright), args.max_width, args.max_height)
    out = {"query": dark, "query_mean_grey": round(dark_mean, 1), "keyframe": bright,
           "keyframe_mean_grey": round(bright_mean, 1), "size": [int(query.shape[1]), int(query.shape[0])]}
    t0 = time.perf_counter()
    dense_q, dense_k = extractor.extract(query), extractor.extract(keyframe)
    out["dvf_ms_per_image"] = round((time.perf_counter() - t0) * 500, 1)
    kxy, kdesc = corner_features(keyframe, dense_k, cfg)
    qxy = detect_corners(query, cfg)
    out["keyframe_corners"], out["query_corners"] = int(len(kxy)), int(len(qxy))
    # Upper bound for corner-to-corner: query corners with a keyframe corner within tolerance.
    if len(qxy) and len(kxy):
        near = np.abs(qxy[:, None] - kxy[None]).max(axis=2).min(axis=1) <= args.tolerance
        out["corners_repeatable"] = int(near.sum())
    runs = {"corners": dataclasses.replace(cfg, direction="corners"),
            "dense_pooled": dataclasses.replace(cfg, direction="dense", dense_coarse="pooled"),
            "dense_exact": dataclasses.replace(cfg, direction="dense", dense_coarse="exact")}
    for name, run_cfg in runs.items():
        t0 = time.perf_counter()
        m = match_to_keyframe(dense_q, kxy, kdesc, run_cfg, query_xy=qxy)
        out[name] = score(m.query_xy, m.map_xy, args.tolerance) | {
            "ms": round((time.perf_counter() - t0) * 1000, 1), "counts": m.counts}
    t0 = time.perf_counter()
    q, m, nq, nm = sift_matches(query, keyframe, cfg.max_corners, args.sift_ratio)
    out["sift"] = score(q, m, args.tolerance) | {"ms": round((time.perf_counter() - t0) * 1000, 1),
                                                 "query_keypoints": nq, "keyframe_keypoints": nm}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="", help="DVF weights (.safetensors); default: models/ default")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--tolerance", type=float, default=3.0, help="px, per axis")
    parser.add_argument("--max-width", type=int, default=640)
    parser.add_argument("--max-height", type=int, default=480)
    parser.add_argument("--max-corners", type=int, default=500)
    parser.add_argument("--ratio", type=float, default=MatchingConfig().ratio)
    parser.add_argument("--sift-ratio", type=float, default=0.8)
    parser.add_argument("--scenes", nargs="*", default=None)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with open(args.data / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    scenes: dict[str, list[str]] = {}
    for row in rows:
        scenes.setdefault(row["scene"], []).append(row["file"])
    extractor, source = load_extractor(args.model, args.threads)
    cfg = MatchingConfig(max_corners=args.max_corners, ratio=args.ratio)
    report = {"model": source, "tolerance_px": args.tolerance, "matching": dataclasses.asdict(cfg),
              "scenes": {}}
    for scene in sorted(scenes):
        if args.scenes and scene not in args.scenes:
            continue
        report["scenes"][scene] = run_scene(extractor, args.data, scene, scenes[scene], cfg, args)
    methods = ("corners", "dense_pooled", "dense_exact", "sift")
    report["total_correct"] = {k: sum(s[k]["correct"] for s in report["scenes"].values()) for k in methods}
    report["total_matches"] = {k: sum(s[k]["matches"] for s in report["scenes"].values()) for k in methods}
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
