"""End-to-end engine latency per stage, and shortlist + re-rank against exhaustive CX. Prints JSON.

    python benchmarks/bench_engine.py --keyframes 1000 --size 320x240 [--model PATH] [--device cpu]
    python benchmarks/bench_engine.py --keyframes 10000 --exhaustive 20
    python benchmarks/bench_engine.py --keyframes 1000 --threads 1 --backend onnxruntime
    python benchmarks/bench_engine.py --keyframes 1000 --threads 1 --intrinsics

Map: ``--real`` keyframes are real DVF keyframes of generated streets by day (each street a
different seed); the rest are copies of them with their grids and global descriptors perturbed,
so every keyframe is a plausible distractor with realistic statistics. Queries: the same streets
by night (``--condition``). ``--intrinsics``: keyframes and queries carry the generated street's
camera (scaled to ``--size``), so verification fits an essential matrix as it does on a robot that
publishes CameraInfo; without it, a fundamental matrix. ``--exhaustive N`` also ranks N queries by CX against *every* keyframe and reports the
speed ratio and how often the shortlist's top-1 agrees with the exhaustive top-1.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _config import add_set_flag, config_from_sets  # noqa: E402
from dejavu_ros.config import DejavuConfig  # noqa: E402
from dejavu_ros.demo.world import make_street, render  # noqa: E402
from dejavu_ros.features.extractor import FeatureExtractor  # noqa: E402
from dejavu_ros.map.store import KeyframeMap  # noqa: E402
from dejavu_ros.relocalization.engine import RelocalizationEngine  # noqa: E402
from dejavu_ros.relocalization.frame import describe, make_keyframe  # noqa: E402
from dejavu_ros.similarity.cx import contextual_similarity  # noqa: E402
from dejavu_ros.similarity.global_descriptor import global_descriptor  # noqa: E402

IDENTITY = np.array([0.0, 0.0, 0.0, 1.0])


def _resize(rgb, size):
    import cv2

    return cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR)


def build_map(path: Path, cfg: DejavuConfig, fe: FeatureExtractor, total: int, real: int, size, rng,
              camera=None):
    streets = [make_street(120.0, seed=s) for s in range(max(1, real // 100))]
    kfs, t0 = [], time.perf_counter()
    for i in range(real):
        street = streets[i % len(streets)]
        x = (i // len(streets)) * 1.2
        frame = describe(_resize(render(street, x, "day", rng), size), fe, cfg)
        kfs.append(make_keyframe(frame, float(i), [x, 1000.0 * (i % len(streets)), 0.0], IDENTITY, cfg,
                                 camera=camera))
    build_s = time.perf_counter() - t0
    for i in range(total - real):  # perturbed copies: realistic but wrong places
        src = kfs[i % real]
        grid = src.grid.astype(np.float32) + rng.normal(0, 0.15, src.grid.shape).astype(np.float32)
        grid /= np.linalg.norm(grid, axis=0, keepdims=True) + 1e-6
        # the shortlist descriptor pooled from the perturbed grid, so both views of a copy agree
        glob = global_descriptor(torch.from_numpy(grid), cfg.similarity.global_cells)[0].numpy()
        kfs.append(make_copy(src, grid.astype(np.float16), glob, 1e4 + i))
    kmap = KeyframeMap.create(path, fe.fingerprint, fe.descriptor_dim)
    for start in range(0, len(kfs), 500):
        kmap.append_many(kfs[start:start + 500])
    kmap.close()
    return streets, build_s / max(real, 1) * 1e3


def street_camera(size):
    """The generated street's camera (demo/run.py) scaled to ``size``."""
    from dejavu_ros.demo.run import camera_intrinsics

    cam = camera_intrinsics()
    return cam.scaled(size[0] / cam.width, size[1] / cam.height)


def make_copy(kf, grid, glob, x):
    from dataclasses import replace

    return replace(kf, grid=grid, global_desc=glob.astype(np.float32), position=np.array([x, -50.0, 0.0]), id=None)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--keyframes", type=int, default=1000)
    p.add_argument("--real", type=int, default=300, help="real DVF keyframes among them")
    p.add_argument("--size", default="320x240")
    p.add_argument("--queries", type=int, default=20)
    p.add_argument("--condition", default="night", choices=("night", "day", "fog"), help="query condition")
    p.add_argument("--exhaustive", type=int, default=0, help="queries also ranked exhaustively")
    p.add_argument("--model", default="")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch default)")
    p.add_argument("--precision", default="fp32")
    p.add_argument("--backend", default="torch", choices=("torch", "onnxruntime", "openvino"), help="features.backend")
    p.add_argument("--intrinsics", action="store_true", help="frames carry camera intrinsics (essential matrix)")
    add_set_flag(p)
    args = p.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    rng = np.random.default_rng(0)
    cfg = config_from_sets(p, args.set)
    cfg.features.model, cfg.features.device, cfg.features.precision = args.model, args.device, args.precision
    cfg.features.threads = args.threads  # the extractor sets torch's thread count from this
    cfg.features.backend = args.backend
    fe = FeatureExtractor.from_config(cfg.features)
    real = min(args.real, args.keyframes)
    camera = street_camera(size) if args.intrinsics else None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        streets, build_ms = build_map(path, cfg, fe, args.keyframes, real, size, rng, camera)
        cfg.node.map_path = str(path)
        t0 = time.perf_counter()
        engine = RelocalizationEngine.from_config(cfg, map_mode="localize", extractor=fe)
        load_s = time.perf_counter() - t0
        queries = [_resize(render(streets[i % len(streets)], (i // len(streets)) * 3.7 + 0.5, args.condition, rng), size)
                   for i in range(args.queries)]
        engine.relocalize(queries[0], 0.0, camera)  # warm-up
        stages: dict[str, list[float]] = {}
        verified = []
        for q in queries:
            r = engine.relocalize(q, 0.0, camera)
            verified.append(len(r.evidence))
            for k, v in r.timings_ms.items():
                stages.setdefault(k, []).append(v)
        out = {"keyframes": args.keyframes, "overrides": args.set, "query_condition": args.condition, "real_keyframes": real, "size": args.size, "device": args.device,
               "backend": args.backend, "intrinsics": args.intrinsics, "model": fe.source, "threads": torch.get_num_threads(), "map_load_s": round(load_s, 3),
               "map_file_bytes_per_keyframe": path.stat().st_size // args.keyframes,
               "keyframe_build_ms": round(build_ms, 1),
               "stage_ms_median": {k: round(statistics.median(v), 2) for k, v in stages.items()},
               "verified_per_frame": round(statistics.mean(verified), 2),
               "frames_per_second": round(1e3 / statistics.median(stages["total"]), 2)}
        if args.exhaustive:
            out["exhaustive"] = compare_exhaustive(engine, queries[: args.exhaustive], cfg)
        engine.close()
    print(json.dumps(out, indent=2))


def compare_exhaustive(engine: RelocalizationEngine, queries, cfg: DejavuConfig) -> dict:
    sim = cfg.similarity
    agree, fast, slow = 0, [], []
    for q in queries:
        t0 = time.perf_counter()
        r = engine.relocalize(q, 0.0)
        fast.append(r.timings_ms["shortlist"] + r.timings_ms.get("prerank", 0.0) + r.timings_ms["rerank"])
        frame = describe(q, engine.extractor, cfg, engine.grid_shape)
        t0 = time.perf_counter()
        scores = contextual_similarity(frame.grid, engine._grids.float(), sim.offset, sim.bandwidth, sim.symmetric,
                                       sim.memory_budget_mb << 20)
        slow.append((time.perf_counter() - t0) * 1e3)
        agree += int(engine._ids[int(scores.argmax())]) == r.candidates[0].keyframe_id
    return {"queries": len(queries), "shortlist_rerank_ms_median": round(statistics.median(fast), 2),
            "exhaustive_cx_ms_median": round(statistics.median(slow), 2),
            "speedup": round(statistics.median(slow) / statistics.median(fast), 1),
            "top1_agreement_percent": round(100.0 * agree / len(queries), 1)}


if __name__ == "__main__":
    main()
