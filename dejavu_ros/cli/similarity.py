"""`dejavu-ros similarity IMG [IMG ...]`: the contextual-similarity matrix of some images.

Defaults reproduce the authors' demo: the model's input scaling (per-image max for the authors'
weights; the shipped model adds its exposure lift), resize to 256×256 (bilinear,
align_corners=True), DVF, features downsampled ×4 the same way, symmetric CX with offset 1.0
and bandwidth 0.5. Row i, column j is CX(source = image i, target = image j).
"""
from __future__ import annotations

import json
from pathlib import Path

from .. import schema
from ..features.dvf import MIN_SIDE
from ..similarity.config import SimilarityConfig
from .common import add_model_arguments, load_extractor, parse_size
from .errors import CliError
from .outputs import output_folder

#: --size bounds: DVF's minimum side, and a cap that keeps one image's CX grid tractable
MAX_SIDE = 4096


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("similarity", help="CX similarity matrix of images (authors' demo pipeline)",
                              description=__doc__)
    p.add_argument("images", nargs="+", help="image files")
    add_model_arguments(p)
    p.add_argument("--size", type=parse_size, default=(256, 256),
                   help=f"network input WxH, each side {MIN_SIDE}..{MAX_SIDE} (default 256x256)")
    schema.add_flag(p, "--stride", SimilarityConfig, "grid_stride")
    schema.add_flag(p, "--offset", SimilarityConfig, "offset")
    schema.add_flag(p, "--bandwidth", SimilarityConfig, "bandwidth")
    p.add_argument("--asymmetric", action="store_true", help="CX(source, target) only")
    p.add_argument("--json", action="store_true", help='print {"images": [...], "matrix": [[...]]}')
    p.add_argument("--pca-dir", type=Path, help="write a PCA-to-RGB picture of each image's features here")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    import cv2
    import torch
    from tqdm import tqdm

    from ..io.images import read_rgb
    from ..similarity.cx import contextual_similarity
    from ..similarity.grid import to_grid

    sim = schema.flag_values(args)
    width, height = args.size
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise CliError(f"--size {width}x{height}: each side must be {MIN_SIDE}..{MAX_SIDE} px "
                       f"(DVF needs {MIN_SIDE}; larger grids make CX's cost explode)")
    pca_dir = output_folder(args.pca_dir, "--pca-dir") if args.pca_dir else None
    images = [read_rgb(p) for p in args.images]  # every file checked before the model is loaded
    extractor = load_extractor(args)
    quiet = args.no_progress or args.json
    dense = [extractor.extract(im, size=args.size) for im in tqdm(images, desc="features", disable=quiet)]
    grids = to_grid(torch.stack(dense), stride=sim["grid_stride"])
    rows = [contextual_similarity(grids[i], grids, sim["offset"], sim["bandwidth"], not args.asymmetric)
            for i in tqdm(range(len(images)), desc="CX rows", disable=quiet)]
    matrix = torch.stack(rows).cpu().numpy()
    if pca_dir is not None:
        _write_pca(pca_dir, args.images, dense, cv2)
    names = [str(p) for p in args.images]
    if args.json:
        print(json.dumps({"images": names, "matrix": matrix.round(6).tolist()}))
    else:
        width = max(len(Path(n).name) for n in names)
        print(" " * width + "  " + " ".join(f"{i:>7d}" for i in range(len(names))))
        for i, name in enumerate(names):
            print(f"{Path(name).name:>{width}}  " + " ".join(f"{v:7.4f}" for v in matrix[i]))
    return 0


def _write_pca(folder: Path, paths, dense, cv2) -> None:
    """One PCA basis for all images, so the same colour means the same descriptor in every picture."""
    from ..evaluation.pca import pca_rgb_many

    for path, rgb in zip(paths, pca_rgb_many(dense)):
        cv2.imwrite(str(folder / (Path(path).stem + "_pca.png")), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
