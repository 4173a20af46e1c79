"""Size and speed of the SQLite keyframe map; prints one JSON object.

A typical keyframe: 500 Shi-Tomasi corners with n=10 DVF descriptors and 3-D points, a 10×24×32
CX grid, a 160-D global descriptor, covariance, intrinsics and a 160-px JPEG thumbnail (made from
a real RobotCar frame in ../shared/data when present, else a synthetic image).

Timings: ``single_append`` is one fsync'd transaction per keyframe (mapping mode); maps are built
with ``append_many`` in batches. Load times are given warm (file in the page cache, just written)
and cold (this file's pages evicted with posix_fadvise, where the OS supports it).

    python benchmarks/bench_map_store.py [--sizes 1000 10000] [--dir /tmp]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from dejavu_ros.map import KeyframeMap  # noqa: E402
from dejavu_ros.map.synthetic import random_keyframe  # noqa: E402
from dejavu_ros.map.thumbnail import make_thumbnail  # noqa: E402

FINGERPRINT = "0f" * 32
SHARED_FRAMES = REPO.parent / "shared" / "data" / "robotcar_dejavu_triplets"


def real_thumbnails(side: int) -> list[bytes]:
    import cv2

    thumbs = []
    for png in sorted(SHARED_FRAMES.glob("*.png")):
        bgr = cv2.imread(str(png), cv2.IMREAD_COLOR)
        if bgr is not None:
            thumbs.append(make_thumbnail(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), side=side))
    return thumbs


def keyframe_pool(args, rng) -> tuple[list, str]:
    n, h, w = args.grid
    pool = [random_keyframe(rng, descriptor_dim=n, global_dim=args.global_dim, grid_hw=(h, w),
                            num_keypoints=args.keypoints, thumbnail_side=args.thumbnail_side)
            for _ in range(50)]
    thumbs = real_thumbnails(args.thumbnail_side)
    for k, kf in enumerate(pool):
        if thumbs:
            kf.thumbnail = thumbs[k % len(thumbs)]
    return pool, ("robotcar frames" if thumbs else "synthetic image")


def evict(path: Path) -> bool:
    """Drop this file's pages from the page cache (no root needed); False when unsupported."""
    if not hasattr(os, "posix_fadvise"):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return True


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return round(time.perf_counter() - t0, 4)


def load_times(path: Path, shortlist: np.ndarray, cold: bool) -> dict:
    """Each loader on a fresh connection (SQLite's own page cache empty), after evicting when cold."""
    loaders = {
        "open_s": lambda m: None,
        "load_global_descriptors_s": lambda m: m.load_global_descriptors(),
        "load_poses_s": lambda m: m.load_poses(),
        "load_grids_shortlist20_s": lambda m: m.load_grids(shortlist),
        "get_one_s": lambda m: m.get(int(shortlist[0])),
        "load_grids_all_s": lambda m: m.load_grids(),
    }
    out = {}
    for name, loader in loaders.items():
        if cold and not evict(path):
            return {}
        t0 = time.perf_counter()
        with KeyframeMap.open(path, mode="r") as m:
            t1 = time.perf_counter()
            loader(m)
            t2 = time.perf_counter()
        out[name] = round((t1 - t0) if name == "open_s" else (t2 - t1), 4)
    return out


def bench_single_append(pool, folder: Path, count: int) -> dict:
    path = folder / "single.db"
    with KeyframeMap.create(path, FINGERPRINT, pool[0].grid.shape[0]) as m:
        times = []
        for k in range(count):
            t0 = time.perf_counter()
            m.append(pool[k % len(pool)])
            times.append(time.perf_counter() - t0)
    size = path.stat().st_size
    path.unlink()
    times_ms = np.array(times) * 1e3
    return {"count": count, "per_s": round(count / sum(times), 1),
            "ms_mean": round(float(times_ms.mean()), 3),
            "ms_p95": round(float(np.percentile(times_ms, 95)), 3), "bytes_per_keyframe": round(size / count)}


def bench_map(pool, folder: Path, size: int, batch: int, rng) -> dict:
    path = folder / f"map_{size}.db"
    t0 = time.perf_counter()
    with KeyframeMap.create(path, FINGERPRINT, pool[0].grid.shape[0]) as m:
        for start in range(0, size, batch):
            frames = []
            for k in range(start, min(size, start + batch)):
                kf = pool[k % len(pool)]
                kf.position = rng.standard_normal(3) * 100
                frames.append(kf)
            m.append_many(frames)
    build = time.perf_counter() - t0
    shortlist = rng.choice(np.arange(1, size + 1), size=min(20, size), replace=False)
    file_bytes = path.stat().st_size
    result = {"keyframes": size, "file_bytes": file_bytes, "bytes_per_keyframe": round(file_bytes / size),
              "build_s": round(build, 3), "append_many_per_s": round(size / build, 1),
              "warm": load_times(path, shortlist, cold=False), "cold": load_times(path, shortlist, cold=True)}
    with KeyframeMap.open(path) as m:
        result["integrity_check_s"] = timed(m.integrity_check)
    path.unlink()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--keypoints", type=int, default=500)
    parser.add_argument("--grid", type=int, nargs=3, default=[10, 24, 32], metavar=("N", "H", "W"))
    parser.add_argument("--global-dim", type=int, default=160)
    parser.add_argument("--thumbnail-side", type=int, default=160)
    parser.add_argument("--single-appends", type=int, default=200)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--dir", default=None, help="folder for the temporary maps (default: system temp)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    pool, thumb_source = keyframe_pool(args, rng)
    folder = Path(tempfile.mkdtemp(prefix="bench_map_", dir=args.dir))
    try:
        payload = [len(kf.thumbnail) for kf in pool]
        report = {
            "keyframe": {"keypoints": args.keypoints, "grid": args.grid, "global_dim": args.global_dim,
                         "thumbnail_side": args.thumbnail_side, "thumbnail_source": thumb_source,
                         "thumbnail_bytes_mean": round(float(np.mean(payload)))},
            "single_append": bench_single_append(pool, folder, args.single_appends),
            "maps": [bench_map(pool, folder, size, args.batch, rng) for size in args.sizes],
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
