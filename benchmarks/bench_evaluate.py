"""Cost of `dejavu-ros evaluate`'s all-pairs CX at the default grid, extrapolated to 1,000 images.

Random unit descriptors on the grid a Nordland frame gets by default (256×128 px → ×4 → capped at
``--grid-max-side`` cells); all-pairs cost is exactly quadratic in the image count, so a run on
``--images`` images is scaled to 1,000. Prints one JSON object.

    python benchmarks/bench_evaluate.py [--images 200] [--grid-max-side 16] [--threads 1]

With 2 threads on a 2-core machine where another process holds a core, the same run is tens of
times slower (threads wait on each other); compare ``--threads 1`` and ``--threads 2``.
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from dejavu_ros.evaluation.pairwise import pairwise_cx
from dejavu_ros.evaluation.run import EvalSettings
from dejavu_ros.similarity.grid import grid_size


def main() -> None:
    d = EvalSettings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--grid-max-side", type=int, default=d.grid_max_side)
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--dim", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="as `evaluate --threads` (0 = torch default)")
    parser.add_argument("--budget-mb", type=int, default=d.memory_budget_mb)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    h, w = grid_size(args.height, args.width, d.grid_stride, args.grid_max_side)
    gen = torch.Generator().manual_seed(0)
    grids = [torch.nn.functional.normalize(torch.randn(args.dim, h, w, generator=gen), dim=0)
             for _ in range(args.images)]
    t0 = time.perf_counter()
    pairwise_cx(grids, memory_budget_bytes=args.budget_mb << 20)
    seconds = time.perf_counter() - t0
    per_pair = seconds / args.images ** 2
    print(json.dumps({"images": args.images, "grid": [h, w], "descriptor_dim": args.dim,
                      "threads": torch.get_num_threads(), "seconds": round(seconds, 2),
                      "ms_per_ordered_pair": round(1e3 * per_pair, 4),
                      "extrapolated_1000_images_s": round(per_pair * 1000 ** 2, 1)}))


if __name__ == "__main__":
    main()
