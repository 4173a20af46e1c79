"""`dejavu-ros overlap A B [--json]`: how much of image A is visible in image B, and their relative scale.

Prints ``overlap_ab`` (the fraction of A's surface visible in B), ``overlap_ba`` (of B's in A) and
``scale`` (how much larger B shows things than A: B a 2× zoom of A → 2). A similarity on SIFT matches
answers where SIFT finds shared structure (``method: sift``); else the DVF pyramid matcher where it
does, also between day and night (``method: matches``); otherwise
the dense scale search, which correlates the two DVF maps over zoom and shift (``method: dense``;
``margin``: how far its best placement beats the best one more than a scale step away — below
0.01 it is a guess). A box-embedding head trained with ``dejavu-ros train-overlap`` answers when forced, or
where the images are too small for the dense search (``--method boxes``, ``--head``; none is
shipped, see the README's overlap section). ``--method`` forces one.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from .. import schema
from ..features.config import FeatureConfig
from .common import add_model_arguments, load_extractor
from .errors import CliError

METHODS = ("auto", "sift", "matches", "dense", "boxes")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("overlap", help="how much of image A is visible in image B, and their relative scale",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("image_a", type=Path, help="image A")
    p.add_argument("image_b", type=Path, help="image B")
    add_model_arguments(p)
    p.add_argument("--head", default="", help="overlap head weights (.safetensors); default: models/overlap_head.safetensors "
                   "if present; 'off': none")
    p.add_argument("--method", choices=METHODS, default="auto",
                   help="auto (sift, else matches, else dense), sift, matches, dense or boxes (default auto)")
    schema.add_flag(p, "--max-side", FeatureConfig, "max_side", default=320)
    p.add_argument("--json", action="store_true", help='print {"overlap_ab": ..., "overlap_ba": ..., "scale": ...}')
    p.set_defaults(func=run)


def run(args) -> int:
    from ..config import DejavuConfig
    from ..features.overlap_head import resolve_overlap_head_path
    from ..features.preprocess import limit_size
    from ..io.images import read_rgb
    from ..relocalization.overlap import estimate_overlap, load_box_head

    images = [read_rgb(p) for p in (args.image_a, args.image_b)]  # both checked before the model loads
    max_side = schema.flag_values(args)["max_side"]
    images = [limit_size(im, max_side)[0] for im in images]
    head_path = args.head
    if args.method == "boxes" and not resolve_overlap_head_path(head_path).is_file():
        raise CliError(f"--method boxes: no overlap head at {resolve_overlap_head_path(head_path)}")
    extractor = load_extractor(args)
    head = load_box_head(head_path, extractor.descriptor_dim)
    cfg = DejavuConfig()
    cfg.features.max_side = max_side
    result = estimate_overlap(images[0], images[1], extractor, cfg, head, args.method).as_dict()
    if args.json:
        print(json.dumps(result))
    else:
        scale = "unknown" if result["scale"] is None else f"{result['scale']:.3f}"
        print(f"{args.image_a.name} in {args.image_b.name}: {100 * result['overlap_ab']:.1f} % visible")
        print(f"{args.image_b.name} in {args.image_a.name}: {100 * result['overlap_ba']:.1f} % visible")
        how = f"{result['inliers']} inliers" if result["method"] != "dense" else f"margin {result['margin']}"
        print(f"scale (B relative to A): {scale}   [{result['method']}, {how}]")
    return 0
