"""`dejavu-ros make-manifest`: write a training/evaluation manifest for a known data layout."""
from __future__ import annotations

import argparse

from .errors import CliError

KINDS = ("folder", "nordland", "grief", "tilde", "vprbench")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("make-manifest", help="write a manifest CSV (path,place,condition,...)",
                              description="folder: ROOT/<condition>/<image>, the same name is the same place. "
                                          "nordland: summer/winter frames. grief: <set>_monthly/images/TTLL.jpg. "
                                          "tilde: fixed webcams (condition = brightness tertile). "
                                          "vprbench: <name>/{query,ref}.")
    p.add_argument("kind", choices=KINDS)
    p.add_argument("root", help="data set folder")
    p.add_argument("--out", required=True, help="manifest to write (paths relative to its folder)")
    p.add_argument("--val-out", default=None,
                   help="also write the held-out places here (nordland/folder: last --holdout-fraction; "
                        "grief: --holdout-locations; tilde: --holdout-scenes)")
    p.add_argument("--holdout-fraction", type=float, default=0.2, help="folder/nordland: fraction of places")
    p.add_argument("--holdout-locations", default="5", help="grief: comma-separated location numbers")
    p.add_argument("--holdout-scenes", default="mexico", help="tilde: comma-separated scene names")
    p.add_argument("--absolute", action="store_true", help="write absolute paths")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..training import datasets
    from ..training.manifest import write_manifest

    split = args.val_out is not None
    if args.kind in ("folder", "nordland"):
        if not 0 <= args.holdout_fraction < 1:
            raise CliError(f"--holdout-fraction must be in [0, 1), got {args.holdout_fraction}")
        train, val = datasets.BUILDERS[args.kind](args.root, holdout_fraction=args.holdout_fraction if split else 0.0)
    elif args.kind == "grief":
        try:
            held = tuple(int(v) for v in args.holdout_locations.split(",") if v) if split else ()
        except ValueError:
            raise CliError(f"--holdout-locations: expected numbers, got {args.holdout_locations!r}") from None
        train, val = datasets.grief(args.root, holdout_locations=held)
    elif args.kind == "tilde":
        held = tuple(v for v in args.holdout_scenes.split(",") if v) if split else ()
        train, val = datasets.tilde(args.root, holdout_scenes=held)
    else:
        train, val = datasets.vprbench(args.root)
    if not train:
        raise CliError(f"{args.root}: no training images left after the hold-out")
    write_manifest(train, args.out, relative=not args.absolute)
    msg = f"{args.out}: {len(train)} images, {len({(r.sequence, r.place) for r in train})} places, " \
          f"conditions {sorted({r.condition for r in train})}"
    if split:
        write_manifest(val, args.val_out, relative=not args.absolute)
        msg += f"; {args.val_out}: {len(val)} held-out images"
    print(msg)
    return 0
