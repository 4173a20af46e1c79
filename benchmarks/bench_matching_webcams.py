"""Day/night sparse matching on fixed webcams, against SIFT in the same run; prints JSON.

    python benchmarks/bench_matching_webcams.py --data DATA_DIR [--model M] [--queries 8] [--tolerance 4]

DATA_DIR holds tilde_webcam (5 webcams) and oxblue_webcam (one camera over 13 days and nights);
their SOURCE.txt files say where a user gets them. A fixed camera shows the same point at the same
pixel in every frame, so a match (xq, yq) ↔ (xk, yk) is correct when both coordinates agree within
``--tolerance`` px. Per TILDE webcam the brightest frame is the keyframe and the ``--queries``
darkest frames (its nights) are the queries; OxBlue's site changes from day to day, so each of
``--queries`` nights (evenly spread) is matched with the brightest frame of the day before it.
Every matcher's matches go through the engine's RANSAC
(fundamental matrix, USAC-MAGSAC, 2 px) as a relocalization would use them:

* ``dvf_dense``: the keyframe's Shi-Tomasi corners searched over the query's whole DVF map (default);
* ``dvf_corners``: DVF corner to corner (the paper's matcher);
* ``sift``: OpenCV SIFT, mutual nearest neighbours and Lowe's ratio 0.8;
* ``dvf+sift``: both match sets into one RANSAC (``matching.method: dvf+sift``).

``--zoom Z`` shows the query Z× nearer than the keyframe (Z < 1: farther; the keyframe is zoomed
instead), both about the image centre, so a match is correct when the query pixel lies within the
tolerance of the keyframe pixel's zoomed position. ``--head [HEAD]`` adds ``dvf_head``: the dense
search from the keypoint head's keypoints instead of Shi-Tomasi's (``matching.keypoints: dvf_head``),
``dvf_head+sift``, and ``refine``: what the engine publishes for a trusted place with
``matching.refine: dvf_head+sift`` (``dvf_dense``'s fit refined with the head's and SIFT's matches
when the refined fit keeps most of its inliers; ``refine_kept`` counts the pairs where it did). ``--scales 1,0.7,1.4`` adds ``dvf_pyramid``:
the dense search over the query's DVF maps at those scales (``matching.query_scales``).
``--scale-search`` adds ``dvf_scale_search``: the dense search at 1 and at the scale the dense scale
search finds between the keyframe's thumbnail and the query (``matching.scale_search``).

Reported per webcam and method: correct inliers per frame (mean), frames with ≥ 10 correct inliers,
precision of the inliers. ``--tum`` adds a day/day viewpoint check on tum_fr3_sequence (frame i
against i+2, essential matrix with the TUM intrinsics): inliers and the rotation's disagreement with
SIFT's.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
from datetime import datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import torch
from scipy.spatial.transform import Rotation

from dejavu_ros.evaluation.scenarios import TUM_CAMERA
from dejavu_ros.features.config import FeatureConfig
from dejavu_ros.features.extractor import FeatureExtractor
from dejavu_ros.io.images import read_rgb
from dejavu_ros.map.thumbnail import decode_thumbnail, make_thumbnail
from dejavu_ros.matching import MatchingConfig, corner_features, detect_corners, match_to_keyframe, verify
from dejavu_ros.matching.matches import Matches
from dejavu_ros.matching.refine import refine_verification
from dejavu_ros.matching.sift import match_sift, sift_features
from dejavu_ros.relocalization.frame import FrameFeatures
from dejavu_ros.training.keypoint_head import centre_crop, mean_grey

METHODS = ("dvf_dense", "dvf_corners", "sift", "dvf+sift")


def zoom_about_centre(image: np.ndarray, factor: float) -> np.ndarray:
    """The centre 1/factor of the image blown up to the full size (factor ≥ 1)."""
    if factor <= 1.0:
        return image
    h, w = image.shape[:2]
    cw, ch = w / factor, h / factor
    x0, y0 = (w - cw) / 2, (h - ch) / 2
    m = np.array([[factor, 0, -x0 * factor], [0, factor, -y0 * factor]], np.float64)
    return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR)


def zoomed_position(xy: np.ndarray, size: tuple[int, int], zoom: float) -> np.ndarray:
    """Where a keyframe pixel appears in the query when the query is ``zoom``× nearer."""
    centre = (np.asarray(size, np.float64) - 1) / 2
    return (xy - centre) * zoom + centre


def webcam_pairs(data: Path, queries: int) -> dict[str, list[tuple[Path, Path]]]:
    """Per webcam, (night query, day keyframe) pairs."""
    cams: dict[str, list[Path]] = {}
    with (data / "tilde_webcam" / "manifest.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            cams.setdefault(f"tilde/{row['scene']}", []).append(data / "tilde_webcam" / row["file"])
    out = {}
    for name, frames in cams.items():
        order = sorted(frames, key=mean_grey)
        out[name] = [(q, order[-1]) for q in order[:queries]]
    with (data / "oxblue_webcam" / "index.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    nights: dict[str, list[dict]] = {}
    for r in rows:
        if r["condition"] == "night":
            nights.setdefault(r["utc"][:10], []).append(r)
    when = {r["path"]: datetime.fromisoformat(r["utc"].replace("Z", "+00:00")) for r in rows}
    pairs = []
    for date in sorted(nights):
        night = min(nights[date], key=lambda r: float(r["mean_luma"]))
        before = [r for r in rows if r["condition"] == "day"
                  and timedelta(0) < when[night["path"]] - when[r["path"]] <= timedelta(hours=24)]
        if before:  # the brightest frame of the preceding day
            day = max(before, key=lambda r: float(r["mean_luma"]))
            pairs.append((data / "oxblue_webcam" / night["path"], data / "oxblue_webcam" / day["path"]))
    picks = np.linspace(0, len(pairs) - 1, min(queries, len(pairs))).round().astype(int)
    out["oxblue"] = [pairs[i] for i in sorted(set(picks))]
    return out


def all_matches(fe: FeatureExtractor, query: np.ndarray, keyframe: np.ndarray, cfg: MatchingConfig,
                scales: list[float] | None = None, head: str | None = None, scale_search: bool = False) -> dict:
    """Putative matches of every method, in pixels of the two images."""
    dq, dk = fe.extract(query), fe.extract(keyframe)
    kxy, kdesc = corner_features(keyframe, dk, cfg)
    qxy = detect_corners(query, cfg)
    dense_cfg = dataclasses.replace(cfg, direction="dense")
    dense = match_to_keyframe(dq, kxy, kdesc, dense_cfg)
    corners = match_to_keyframe(dq, kxy, kdesc, dataclasses.replace(cfg, direction="corners"), query_xy=qxy)
    sift = match_sift(*sift_features(query, cfg.max_corners), *sift_features(keyframe, cfg.max_corners))
    out = {"dvf_dense": dense, "dvf_corners": corners, "sift": sift, "dvf+sift": Matches.concat([dense, sift])}
    if head is not None:
        head_cfg = dataclasses.replace(dense_cfg, keypoints="dvf_head", keypoint_head=head)
        hxy, hdesc = corner_features(keyframe, dk, head_cfg)
        out["dvf_head"] = match_to_keyframe(dq, hxy, hdesc, head_cfg)
        out["dvf_head+sift"] = Matches.concat([out["dvf_head"], sift])
    frame = FrameFeatures(rgb=query, scale=1.0, dense=dq, global_desc=None, grid=None,
                          original_size=(query.shape[1], query.shape[0]))

    def pyramid(scales):
        return Matches.best_of_scales([match_to_keyframe(d, kxy, kdesc, dense_cfg, query_image_size=frame.size)
                                       for d in frame.pyramid(fe, scales)])

    if scales:
        out["dvf_pyramid"] = pyramid(scales)
    if scale_search:
        found = frame.scale_against(fe, decode_thumbnail(make_thumbnail(keyframe)))
        out["dvf_scale_search"] = pyramid([1.0] + ([found] if found is not None else []))
        out["dvf_scale_search"].counts["scale"] = found
    return out


def verified(matches: dict[str, Matches], cfg: MatchingConfig, refined: list[bool], **camera) -> dict:
    """RANSAC of every method's matches; with the head's, also ``refine``: what the engine publishes for
    a trusted place with ``matching.refine: dvf_head+sift`` — the default's verification refined by one
    more RANSAC with the head's and SIFT's matches, kept when it agrees (``refined`` records whether)."""
    found = {name: verify(m, cfg, **camera) for name, m in matches.items()}
    if "dvf_head" in matches:
        refinement = refine_verification(found["dvf_dense"], [Matches.concat([matches["dvf_head"], matches["sift"]])],
                                         cfg, **camera)
        found["refine"] = refinement.geometry if refinement.accepted else found["dvf_dense"]
        refined.append(refinement.accepted)
    return found


def run_webcam(fe, pairs: list[tuple[Path, Path]], cfg: MatchingConfig, args) -> dict:
    per = {m: [] for m in methods(args)}
    found = []  # the query scale the scale search chose per pair
    refined: list[bool] = []  # per pair: the refined fit was kept (matching.refine)
    for query_path, keyframe_path in pairs:
        query, keyframe = centre_crop(read_rgb(query_path)), centre_crop(read_rgb(keyframe_path))
        query = zoom_about_centre(query, args.zoom)
        keyframe = zoom_about_centre(keyframe, 1.0 / args.zoom)
        size = (query.shape[1], query.shape[0])
        matches_by_name = all_matches(fe, query, keyframe, cfg, args.scales, args.head, args.scale_search)
        for name, geo in verified(matches_by_name, cfg, refined, query_size=size).items():
            matches = geo.matches
            inl = geo.inliers
            expected = zoomed_position(inl.map_xy, size, args.zoom)
            ok = np.all(np.abs(inl.query_xy - expected) <= args.tolerance, axis=1) if len(inl) else np.zeros(0, bool)
            per[name].append((int(ok.sum()), len(inl), len(matches)))
            if name == "dvf_scale_search":
                found.append(matches.counts.get("scale"))
    out = {"pairs": [[q.name, k.name] for q, k in pairs]}
    if refined:
        out["refine_kept"] = int(sum(refined))
    if args.scale_search:
        out["scale_search_found"] = [None if f is None else round(f, 3) for f in found]
    for name, rows in per.items():
        correct, inliers, putative = (np.array(v) for v in zip(*rows))
        out[name] = {"correct_per_frame": round(float(correct.mean()), 1),
                     "frames_with_10_correct": int((correct >= 10).sum()),
                     "precision": round(float(correct.sum() / max(inliers.sum(), 1)), 3),
                     "putative_per_frame": round(float(putative.mean()), 1)}
    return out


def methods(args) -> tuple[str, ...]:
    return (METHODS + (("dvf_pyramid",) if args.scales else ()) + (("dvf_scale_search",) if args.scale_search else ())
            + (("dvf_head", "dvf_head+sift", "refine") if args.head is not None else ()))


def run_tum(fe, data: Path, cfg: MatchingConfig, args) -> dict:
    paths = sorted((data / "tum_fr3_sequence").glob("*.png"))
    rows = {m: [] for m in methods(args)}
    for a, b in zip(paths[:-2], paths[2:]):
        query, keyframe = read_rgb(a), read_rgb(b)
        found = verified(all_matches(fe, query, keyframe, cfg, args.scales, args.head, args.scale_search), cfg, [],
                         K_query=TUM_CAMERA, K_map=TUM_CAMERA.k)
        reference = found["sift"].rotation
        for name, geo in found.items():
            angle = (float(np.degrees(Rotation.from_matrix(geo.rotation @ reference.T).magnitude()))
                     if geo.rotation is not None and reference is not None else float("nan"))
            rows[name].append((geo.num_inliers, angle))
    return {name: {"inliers_per_pair": round(float(np.mean([r[0] for r in v])), 1),
                   "rotation_vs_sift_deg_median": round(float(np.nanmedian([r[1] for r in v])), 2)}
            for name, v in rows.items()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--model", default="")
    p.add_argument("--queries", type=int, default=8, help="night frames per webcam")
    p.add_argument("--tolerance", type=float, default=4.0, help="px per axis")
    p.add_argument("--tum", action="store_true", help="also the day/day viewpoint check on TUM")
    p.add_argument("--zoom", type=float, default=1.0, help="query this many times nearer than the keyframe")
    p.add_argument("--scales", type=lambda v: [float(x) for x in v.split(",")], default=None,
                   help="comma-separated query scales of the dvf_pyramid method (e.g. 1,0.7,1.4)")
    p.add_argument("--scale-search", action="store_true",
                   help="add dvf_scale_search (matching.scale_search: the query searched at the keyframe's dense-searched scale too)")
    p.add_argument("--head", nargs="?", const="", default=None, metavar="HEAD",
                   help="add dvf_head (and dvf_head+sift): keyframe keypoints from the keypoint head "
                        "(matching.keypoints dvf_head; HEAD = its weights, none = the shipped head)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    if args.zoom <= 0:
        p.error("--zoom must be > 0")
    torch.set_num_threads(args.threads)
    fe = FeatureExtractor.from_config(FeatureConfig(model=args.model, device="cpu", threads=args.threads))
    cfg = MatchingConfig()
    report = {"model": fe.source, "tolerance_px": args.tolerance, "queries_per_webcam": args.queries,
              "zoom": args.zoom, "scales": args.scales, "webcams": {}}
    for name, pairs in sorted(webcam_pairs(args.data, args.queries).items()):
        report["webcams"][name] = run_webcam(fe, pairs, cfg, args)
        print(name, {m: report["webcams"][name][m]["frames_with_10_correct"] for m in methods(args)}, file=sys.stderr)
    report["totals"] = {m: {"frames_with_10_correct": sum(w[m]["frames_with_10_correct"]
                                                          for w in report["webcams"].values()),
                            "correct_per_frame": round(float(np.mean([w[m]["correct_per_frame"]
                                                                      for w in report["webcams"].values()])), 1),
                            "precision_mean": round(float(np.mean([w[m]["precision"]
                                                                   for w in report["webcams"].values()])), 3)}
                        for m in methods(args)}
    if args.tum:
        report["tum_day_viewpoint"] = run_tum(fe, args.data, cfg, args)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
