"""Shortlist at city scale: exact matmul against the FAISS IVF-PQ index; prints JSON.

    python benchmarks/bench_shortlist.py [--sizes 10000 100000 1000000] [--queries 200] [--k 20] [--nprobe 16 32 64]

Synthetic global descriptors with the structure of a mapped route (D = 160, the default 4×4 layout
of 10-dim DVF descriptors): keyframes follow a slow random walk through clusters, as consecutive
keyframes of a drive resemble each other; queries are noisy copies of random keyframes (another
season). Reported per map size: ms per query (median) for the exact shortlist (torch matmul +
top-k) and for FAISS (IVF-PQ, nprobe), FAISS's recall of the exact top-k, the index build time
and the index and descriptor memory per keyframe.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import median_ms  # noqa: E402

from dejavu_ros.relocalization.config import EngineConfig  # noqa: E402
from dejavu_ros.similarity.faiss_index import ShortlistIndex, shortlist_rows  # noqa: E402
from dejavu_ros.similarity.global_descriptor import shortlist  # noqa: E402


def route_descriptors(n: int, dim: int, rng: np.random.Generator, chunk: int = 100_000) -> np.ndarray:
    out = np.empty((n, dim), np.float32)
    centres = rng.standard_normal((max(16, n // 500), dim)).astype(np.float32)
    state = rng.standard_normal(dim).astype(np.float32)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        walk = np.cumsum(rng.standard_normal((m, dim)).astype(np.float32) * 0.05, axis=0) + state
        state = walk[-1]
        x = centres[rng.integers(len(centres), size=m)] + walk + 0.3 * rng.standard_normal((m, dim)).astype(np.float32)
        out[start:start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--nprobe", type=int, nargs="+", default=[EngineConfig().faiss_nprobe],
                   help="cells scanned per query (several values share one index build)")
    p.add_argument("--dim", type=int, default=160)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    import faiss

    faiss.omp_set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    report = {"k": args.k, "dim": args.dim, "threads": args.threads, "sizes": {}}
    for n in args.sizes:
        db = route_descriptors(n, args.dim, rng)
        picks = rng.integers(n, size=args.queries)
        noisy = db[picks] + 0.15 * rng.standard_normal((args.queries, args.dim)).astype(np.float32)
        queries = noisy / np.linalg.norm(noisy, axis=1, keepdims=True)
        db_t = torch.from_numpy(db)
        exact = [shortlist(torch.from_numpy(q), db_t, args.k)[1].numpy() for q in queries]
        t0 = time.perf_counter()
        index = ShortlistIndex.build(db)
        build_s = time.perf_counter() - t0
        exact_hit = float(np.mean([p in set(e) for p, e in zip(picks, exact)]))
        q0 = torch.from_numpy(queries[0])
        row = {"exact_ms": median_ms(lambda: shortlist(q0, db_t, args.k), repeats=11)["median_ms"],
               "exact_finds_the_source_keyframe": round(exact_hit, 3), "index_build_s": round(build_s, 1),
               "index_bytes_per_keyframe": round(index.bytes_per_keyframe, 1),
               "descriptor_bytes_per_keyframe": 4 * args.dim, "faiss": {}}
        for nprobe in args.nprobe:
            approx = [shortlist_rows(index, db, q, args.k, nprobe)[1] for q in queries]
            recall = float(np.mean([len(set(a) & set(e)) / args.k for a, e in zip(approx, exact)]))
            hit = float(np.mean([p in set(a) for p, a in zip(picks, approx)]))
            row["faiss"][f"nprobe {nprobe}"] = {
                "ms": median_ms(lambda: shortlist_rows(index, db, queries[0], args.k, nprobe), repeats=11)["median_ms"],
                "recall_of_exact_topk": round(recall, 3), "finds_the_source_keyframe": round(hit, 3)}
        report["sizes"][str(n)] = row
        print(n, report["sizes"][str(n)], file=sys.stderr)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
