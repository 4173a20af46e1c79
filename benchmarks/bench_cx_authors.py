"""CX re-rank time against the Deja-Vu authors' ContextualLoss on identical input, one run, as JSON.

    python benchmarks/bench_cx_authors.py --authors-repo PATH [--threads 1] [--device cpu|cuda] [--map MAP.db]

PATH is a checkout of the authors' repository (github.com/jspenmar/DejaVu_Features; its
``losses/contextual.py`` is imported from there at run time, nothing of it is in this package).
Shapes: the engine's re-rank (a 320×240 query → 32×24 grid against 20 keyframes), and square
32×32 and 64×64 grids against 64 / 16 keyframes. Both sides get the same unit descriptor maps;
the authors' module compares pair-wise, so the query is repeated once per keyframe. The two
results must agree to 1e-4 (the script says so if they do not). ``--map`` adds the engine's shape on
real DVF grids: the middle keyframe of a map against its first 20 (real maps have near-duplicate
descriptors, whose weights underflow: random unit vectors do not show that cost). The two sides run
in turn, A B A B, and the speed-up is the median of the per-pair ratios.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import paired_ms  # noqa: E402

from dejavu_ros.similarity.cx import contextual_similarity  # noqa: E402

SHAPES = [("engine 32x24 x 20 keyframes", 24, 32, 20), ("32x32 x 64", 32, 32, 64), ("64x64 x 16", 64, 64, 16)]


def load_authors(repo: Path):
    """The authors' ContextualLoss class from their checkout (their modules import each other by
    top-level name, so the checkout goes on sys.path)."""
    source = repo / "losses" / "contextual.py"
    if not source.is_file():
        raise SystemExit(f"--authors-repo {repo}: no losses/contextual.py there (a checkout of "
                         "github.com/jspenmar/DejaVu_Features is expected)")
    sys.path.insert(0, str(repo))
    spec = importlib.util.spec_from_file_location("authors_contextual", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ContextualLoss


def _inputs(map_path: Path | None, gen: torch.Generator):
    """(name, 1×n×h×w query, K×n×h×w keyframe grids) for every shape measured."""
    for name, h, w, keyframes in SHAPES:
        yield (name, torch.nn.functional.normalize(torch.randn(1, 10, h, w, generator=gen), dim=1),
               torch.nn.functional.normalize(torch.randn(keyframes, 10, h, w, generator=gen), dim=1))
    if map_path is not None:
        import numpy as np

        from dejavu_ros.map.store import KeyframeMap

        with KeyframeMap.open(map_path) as kmap:
            grids = torch.from_numpy(kmap.load_grids(dtype=np.float32))
        h, w = grids.shape[-2:]
        yield f"map {w}x{h} x {min(20, len(grids))} keyframes", grids[len(grids) // 2][None], grids[:20]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--authors-repo", type=Path, required=True)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--map", type=Path, help="a keyframe map (dejavu-ros build-map): adds its real CX grids")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else None
    authors = load_authors(args.authors_repo)(offset=1.0, bandwidth=0.5, is_symmetric=True, is_similarity=True)
    gen = torch.Generator().manual_seed(0)
    out = {"device": str(dev), "torch": torch.__version__, "threads": torch.get_num_threads(),
           "machine": platform.machine(), "processor": platform.processor(), "shapes": {}}
    with torch.inference_mode():
        for name, query, maps in _inputs(args.map, gen):
            query, maps = query.to(dev), maps.to(dev)
            repeated = query.expand(maps.shape[0], -1, -1, -1).contiguous()
            ours_scores = contextual_similarity(query, maps)
            theirs_scores = authors(repeated, maps)
            diff = float((ours_scores - theirs_scores).abs().max())
            repeats = max(1, args.repeats if query[0, 0].numel() <= 1024 else args.repeats // 2)
            timing = paired_ms(lambda: contextual_similarity(query, maps), lambda: authors(repeated, maps),
                               repeats, sync=sync)
            out["shapes"][name] = {"ours_ms": timing["a_median_ms"], "authors_ms": timing["b_median_ms"],
                                   "speedup": timing["ratio_b_over_a"], "max_abs_diff": diff,
                                   "agree_1e-4": diff <= 1e-4}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
