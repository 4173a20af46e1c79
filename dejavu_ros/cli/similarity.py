"""`dejavu-ros similarity IMG [IMG ...]`: the contextual-similarity matrix of some images.

Defaults reproduce the authors' demo: the model's input scaling (per-image max for the authors'
weights; the shipped model adds its exposure lift), resize to 256×256 (bilinear,
align_corners=True), DVF, features downsampled ×4 the same way, symmetric CX with offset 1.0
and bandwidth 0.5. Row i, column j is CX(source = image i, target = image j).
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import torch

from ..similarity.cx import pairwise_matrix
from ..similarity.grid import to_grid
from .common import add_model_arguments, load_extractor, parse_size, read_rgb
from .errors import CliError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("similarity", help="CX similarity matrix of images (authors' demo pipeline)",
                              description=__doc__)
    p.add_argument("images", nargs="+", help="image files")
    add_model_arguments(p)
    p.add_argument("--size", type=parse_size, default=(256, 256), help="network input WxH (default 256x256)")
    p.add_argument("--stride", type=int, default=4, help="feature downsampling before CX (default 4)")
    p.add_argument("--offset", type=float, default=1.0)
    p.add_argument("--bandwidth", type=float, default=0.5)
    p.add_argument("--asymmetric", action="store_true", help="CX(source, target) only")
    p.add_argument("--json", action="store_true", help='print {"images": [...], "matrix": [[...]]}')
    p.add_argument("--pca-dir", type=Path, help="write a PCA-to-RGB picture of each image's features here")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.stride < 1:
        raise CliError(f"--stride must be ≥ 1, got {args.stride}")
    extractor = load_extractor(args)
    images = [read_rgb(p) for p in args.images]
    dense = extractor.extract_batch(images, size=args.size)
    grids = to_grid(torch.stack(dense), stride=args.stride)
    matrix = pairwise_matrix(grids, args.offset, args.bandwidth, symmetric=not args.asymmetric).cpu().numpy()
    if args.pca_dir:
        _write_pca(args.pca_dir, args.images, dense)
    names = [str(p) for p in args.images]
    if args.json:
        print(json.dumps({"images": names, "matrix": matrix.round(6).tolist()}))
    else:
        width = max(len(Path(n).name) for n in names)
        print(" " * width + "  " + " ".join(f"{i:>7d}" for i in range(len(names))))
        for i, name in enumerate(names):
            print(f"{Path(name).name:>{width}}  " + " ".join(f"{v:7.4f}" for v in matrix[i]))
    return 0


def _write_pca(folder: Path, paths, dense) -> None:
    from ..evaluation.pca import pca_rgb

    folder.mkdir(parents=True, exist_ok=True)
    for path, d in zip(paths, dense):
        out = folder / (Path(path).stem + "_pca.png")
        cv2.imwrite(str(out), cv2.cvtColor(pca_rgb(d), cv2.COLOR_RGB2BGR))
