"""Soak run: many thousands of frames through one engine; does anything grow or slow down? Prints JSON.

    python benchmarks/soak.py                                   # 20,000 frames of 160x128
    python benchmarks/soak.py --frames 2000 --json-out soak.json

A node runs for days, so what matters is what a short benchmark cannot show: resident memory
after warm-up (leaks), latency per window of frames (fragmentation, growing state), open file
descriptors and threads (a map re-opened without closing, a thread started per frame). The map
is small (a few keyframes of the generated street by day) and re-opened every ``--reload-every``
frames, as ``~/reload_map`` would; the queries cycle through night and day views of the street.
Sequence fusion is on so its history is exercised too. The CX grid is capped at 16 cells and one
candidate is verified so that 20,000 frames fit in well under half an hour on two CPU cores.

``--json-out`` is rewritten after every window ("complete": false until the end), so a run that
is stopped early still leaves its figures.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import torch

from dejavu_ros.config import DejavuConfig
from dejavu_ros.demo.world import make_street, render
from dejavu_ros.features.config import FeatureConfig
from dejavu_ros.features.extractor import FeatureExtractor
from dejavu_ros.relocalization.engine import RelocalizationEngine

MB = 1024 * 1024
KEYFRAME_SPACING_M = 3.0


# --- process figures (psutil when installed, /proc otherwise) ------------------------------------

def _psutil():
    try:
        import psutil
    except ImportError:
        return None
    return psutil.Process()


def memory_source() -> str:
    return "psutil" if _psutil() is not None else "/proc/self/statm"


def resident_bytes() -> int:
    proc = _psutil()
    if proc is not None:
        return int(proc.memory_info().rss)
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def open_fds() -> int:
    proc = _psutil()
    if proc is not None and hasattr(proc, "num_fds"):
        return int(proc.num_fds())
    return len(os.listdir("/proc/self/fd"))


def os_threads() -> int:
    proc = _psutil()
    if proc is not None:
        return int(proc.num_threads())
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("Threads:"))


def snapshot() -> dict:
    gc.collect()
    return {"rss_mb": round(resident_bytes() / MB, 2), "fds": open_fds(), "os_threads": os_threads(),
            "python_threads": threading.active_count()}


# --- inputs --------------------------------------------------------------------------------------

def render_views(xs, condition: str, size: tuple[int, int], seed: int) -> list[np.ndarray]:
    street = make_street(float(max(xs)) + 10.0, seed=seed)
    rng = np.random.default_rng(seed)
    return [cv2.resize(render(street, float(x), condition, rng), size, interpolation=cv2.INTER_AREA)
            for x in xs]


def soak_config(map_path: Path, grid_max_side: int, verify_top_m: int, sequence_length: int) -> DejavuConfig:
    cfg = DejavuConfig()
    cfg.features.device = "cpu"
    cfg.node.map_path = str(map_path)
    cfg.similarity.grid_max_side = grid_max_side
    cfg.engine.verify_top_m = verify_top_m
    cfg.engine.sequence_length = sequence_length
    return cfg


def build_map(cfg: DejavuConfig, extractor: FeatureExtractor, keyframes: int, size, seed: int) -> None:
    xs = np.arange(keyframes) * KEYFRAME_SPACING_M
    engine = RelocalizationEngine.from_config(cfg, "map", extractor)
    try:
        for i, (x, rgb) in enumerate(zip(xs, render_views(xs, "day", size, seed))):
            decision = engine.add_frame(rgb, float(i), [float(x), 0.0, 0.0], [0.0, 0.0, 0.0, 1.0])
            if not decision.added:
                raise RuntimeError(f"soak map: keyframe {i} not added ({decision.reason})")
    finally:
        engine.close()


def query_pool(keyframes: int, size, seed: int, count: int = 64) -> list[np.ndarray]:
    """Night and day views between the keyframes (night noise differs per view)."""
    xs = np.linspace(0.0, (keyframes - 1) * KEYFRAME_SPACING_M, count // 2)
    return render_views(xs, "night", size, seed) + render_views(xs + 0.7, "day", size, seed)


# --- the run -------------------------------------------------------------------------------------

def _percent(new: float, old: float) -> float:
    return round(100.0 * (new - old) / old, 3) if old else 0.0


def run_soak(frames: int = 20_000, window: int = 1000, warmup: int = 1000, size=(160, 128),
             keyframes: int = 8, reload_every: int = 2000, grid_max_side: int = 16, verify_top_m: int = 1,
             sequence_length: int = 3, model: str = "", threads: int = 1, seed: int = 0,
             json_out: str | Path | None = None, progress=sys.stderr) -> dict:
    """Relocalize ``frames`` frames and report memory, latency per window, fds and threads."""
    if frames < warmup + window or window < 1:
        raise ValueError("need frames >= warmup + window and window >= 1")
    torch.set_num_threads(threads)
    workdir = tempfile.TemporaryDirectory(prefix="dejavu_soak_")
    cfg = soak_config(Path(workdir.name) / "soak_map.db", grid_max_side, verify_top_m, sequence_length)
    extractor = (FeatureExtractor.from_config(FeatureConfig(model=model, device="cpu", threads=threads)) if model
                 else FeatureExtractor.random(seed=seed))
    build_map(cfg, extractor, keyframes, size, seed)
    pool = query_pool(keyframes, size, seed)
    engine = RelocalizationEngine.from_config(cfg, "localize", extractor)
    report = {"complete": False, "frames": 0, "frames_requested": frames, "window": window, "warmup": warmup,
              "image_size": list(size), "keyframes": engine.map_size,
              "torch_threads": torch.get_num_threads(), "model": extractor.source,
              "reload_every": reload_every, "memory_source": memory_source(),
              "config": {"similarity.grid_max_side": grid_max_side, "engine.verify_top_m": verify_top_m,
                         "engine.sequence_length": sequence_length},
              "start": snapshot(), "windows": [], "status_counts": {}}
    statuses: Counter = Counter()
    latencies: list[float] = []
    began = time.perf_counter()
    try:
        for i in range(frames):
            if reload_every and i and i % reload_every == 0:
                engine.reload_map()
            t0 = time.perf_counter()
            result = engine.relocalize(pool[i % len(pool)], 1_000.0 + 0.1 * i)
            latencies.append((time.perf_counter() - t0) * 1e3)
            statuses[result.status] += 1
            if i + 1 == warmup:
                report["after_warmup"] = snapshot()
            if (i + 1) % window == 0:
                _close_window(report, latencies, i + 1, statuses, began)
                latencies = []
                if progress is not None:
                    w = report["windows"][-1]
                    print(f"soak: {i + 1}/{frames} frames  p50 {w['p50_ms']:.1f} ms  "
                          f"p99 {w['p99_ms']:.1f} ms  rss {w['rss_mb']:.1f} MB", file=progress, flush=True)
                if json_out:
                    _write(json_out, report)
        if latencies:  # a last, shorter window
            _close_window(report, latencies, frames, statuses, began)
    finally:
        engine.close()
        workdir.cleanup()
    report["complete"] = True
    if json_out:
        _write(json_out, report)
    return report


def _close_window(report: dict, latencies: list[float], done: int, statuses: Counter, began: float) -> None:
    snap = snapshot()
    report["windows"].append({"frames": [done - len(latencies), done],
                              "p50_ms": round(float(np.percentile(latencies, 50)), 3),
                              "p99_ms": round(float(np.percentile(latencies, 99)), 3),
                              "rss_mb": snap["rss_mb"]})
    report["frames"] = done
    report["end"] = snap
    report["status_counts"] = dict(statuses)
    report["wall_s"] = round(time.perf_counter() - began, 1)
    report["frames_per_s"] = round(done / report["wall_s"], 2) if report["wall_s"] else None
    _summarise(report)


def _summarise(report: dict) -> None:
    """Growth after warm-up, the memory trend and latency stability over the windows after warm-up."""
    warm = report.get("after_warmup")
    after = [w for w in report["windows"] if w["frames"][0] >= report["warmup"]]
    if warm is None or not after:
        return
    end = report["end"]
    report["rss_growth_percent"] = _percent(end["rss_mb"], warm["rss_mb"])
    if len(after) >= 2:
        x = np.array([w["frames"][1] for w in after], float) / 1000.0
        slope = np.polyfit(x, [w["rss_mb"] for w in after], 1)[0]
        report["rss_slope_mb_per_1000_frames"] = round(float(slope), 4)
    p50 = [w["p50_ms"] for w in after]
    report["latency_stability"] = {
        "p50_ms_min": min(p50), "p50_ms_max": max(p50), "p99_ms_max": max(w["p99_ms"] for w in after),
        "p50_last_vs_first_percent": _percent(p50[-1], p50[0])}
    report["changes_after_warmup"] = {"fds": end["fds"] - warm["fds"],
                                      "os_threads": end["os_threads"] - warm["os_threads"],
                                      "python_threads": end["python_threads"] - warm["python_threads"]}


def _write(path: str | Path, report: dict) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=2))
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=20_000)
    p.add_argument("--window", type=int, default=1000, help="frames per latency/memory window")
    p.add_argument("--warmup", type=int, default=1000, help="frames before the memory baseline is taken")
    p.add_argument("--size", default="160x128", help="query image WxH")
    p.add_argument("--keyframes", type=int, default=8)
    p.add_argument("--reload-every", type=int, default=2000,
                   help="re-open the map every N frames (0 = never)")
    p.add_argument("--grid-max-side", type=int, default=16)
    p.add_argument("--verify-top-m", type=int, default=1)
    p.add_argument("--sequence-length", type=int, default=3)
    p.add_argument("--model", default="", help="DVF weights; default: a seeded untrained light network")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--json-out", help="also write the report here (updated after every window)")
    p.add_argument("--quiet", action="store_true", help="no per-window progress on stderr")
    args = p.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    report = run_soak(args.frames, args.window, args.warmup, (width, height), args.keyframes,
                      args.reload_every, args.grid_max_side, args.verify_top_m, args.sequence_length,
                      args.model, args.threads, json_out=args.json_out,
                      progress=None if args.quiet else sys.stderr)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
