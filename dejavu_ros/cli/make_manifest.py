"""`dejavu-ros make-manifest`: write a training/evaluation manifest for a known data layout."""
from __future__ import annotations

import argparse

from .errors import CliError

KINDS = ("folder", "nordland", "grief", "tilde", "oxblue", "vprbench")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("make-manifest", help="write a manifest CSV (path,place,condition,...)",
                              description="folder: ROOT/<condition>/<image>, the same name is the same place. "
                                          "nordland: summer/winter frames. grief: <set>_monthly/images/TTLL.jpg. "
                                          "tilde: fixed webcams (condition = brightness tertile). "
                                          "oxblue: one fixed webcam over 13 days (index.csv: day/twilight/night). "
                                          "vprbench: <name>/{query,ref}.")
    p.add_argument("kind", choices=KINDS)
    p.add_argument("root", help="data set folder")
    p.add_argument("--out", required=True, help="manifest to write (paths relative to its folder)")
    p.add_argument("--val-out", default=None,
                   help="also write the held-out places here (nordland/folder: --holdout-places or the last "
                        "--holdout-fraction; grief: --holdout-locations; tilde: --holdout-scenes; oxblue: "
                        "--holdout-days)")
    p.add_argument("--holdout-fraction", type=float, default=0.2, help="folder/nordland: fraction of places")
    p.add_argument("--holdout-places", default=None, metavar="FIRST-LAST",
                   help="nordland: hold out this contiguous segment of places (e.g. 1481-1680)")
    p.add_argument("--gap-places", type=int, default=0,
                   help="nordland: places on each side of the held-out segment that go to neither set")
    p.add_argument("--reserve-places", default=None, metavar="FIRST-LAST",
                   help="nordland: places in neither set (kept for another use, e.g. the trust calibration)")
    p.add_argument("--holdout-locations", default="5", help="grief: comma-separated location numbers")
    p.add_argument("--holdout-scenes", default="mexico", help="tilde: comma-separated scene names")
    p.add_argument("--holdout-days", default=None,
                   help="oxblue: comma-separated UTC dates held out (default: the last three, 2023-06-23..25)")
    p.add_argument("--gap-days", default=None, help="oxblue: dates in neither set (default: 2023-06-22)")
    p.add_argument("--regions", default=None, metavar="ROWSxCOLS",
                   help="tilde/oxblue: cut each frame into this many places (default: 1x1 for tilde, 2x2 for oxblue)")
    p.add_argument("--val-conditions", default=None,
                   help="keep only these comma-separated conditions in --val-out (e.g. night,day)")
    p.add_argument("--absolute", action="store_true", help="write absolute paths")
    p.set_defaults(func=run)


def _regions(text: str | None, default: tuple[int, int]) -> tuple[int, int]:
    if text is None:
        return default
    try:
        rows, cols = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise CliError(f"--regions: expected ROWSxCOLS such as 2x2, got {text!r}") from None
    if rows < 1 or cols < 1:
        raise CliError(f"--regions: rows and columns must be ≥ 1, got {text!r}")
    return rows, cols


def _segment(text: str) -> tuple[int, int]:
    try:
        first, last = (int(v) for v in text.split("-"))
    except ValueError:
        raise CliError(f"expected places FIRST-LAST such as 1481-1680, got {text!r}") from None
    return first, last


def _split(args: argparse.Namespace):
    from ..datasets import builders as datasets

    split = args.val_out is not None
    if args.kind in ("folder", "nordland"):
        if not 0 <= args.holdout_fraction < 1:
            raise CliError(f"--holdout-fraction must be in [0, 1), got {args.holdout_fraction}")
        if args.gap_places < 0:
            raise CliError(f"--gap-places must be ≥ 0, got {args.gap_places}")
        fraction = args.holdout_fraction if split else 0.0
        if args.kind == "folder":
            return datasets.folder(args.root, holdout_fraction=fraction)
        segment = _segment(args.holdout_places) if split and args.holdout_places else None
        train, val = datasets.nordland(args.root, holdout_fraction=fraction, segment=segment, gap=args.gap_places)
        if args.reserve_places:
            first, last = _segment(args.reserve_places)
            train = [r for r in train if not first <= int(r.place) <= last]
        return train, val
    if args.kind == "grief":
        try:
            held = tuple(int(v) for v in args.holdout_locations.split(",") if v) if split else ()
        except ValueError:
            raise CliError(f"--holdout-locations: expected numbers, got {args.holdout_locations!r}") from None
        return datasets.grief(args.root, holdout_locations=held)
    if args.kind == "tilde":
        held = tuple(v for v in args.holdout_scenes.split(",") if v) if split else ()
        return datasets.tilde(args.root, holdout_scenes=held, regions=_regions(args.regions, (1, 1)))
    if args.kind == "oxblue":
        days = lambda text, default: tuple(v for v in text.split(",") if v) if text is not None else default  # noqa: E731
        held = days(args.holdout_days, datasets.OXBLUE_HOLDOUT_DAYS) if split else ()
        gap = days(args.gap_days, datasets.OXBLUE_GAP_DAYS) if split else ()
        return datasets.oxblue(args.root, holdout_days=held, gap_days=gap, regions=_regions(args.regions, (2, 2)))
    return datasets.vprbench(args.root)


def run(args: argparse.Namespace) -> int:
    from ..datasets.builders import keep_conditions
    from ..datasets.manifest import write_manifest
    from .outputs import output_file

    output_file(args.out, "--out")
    if args.val_out is not None:
        output_file(args.val_out, "--val-out")
    train, val = _split(args)
    if not train:
        raise CliError(f"{args.root}: no training images left after the hold-out")
    if args.val_out is not None and args.val_conditions:
        val = keep_conditions(val, [c for c in args.val_conditions.split(",") if c])
    write_manifest(train, args.out, relative=not args.absolute)
    msg = f"{args.out}: {len(train)} images, {len({(r.sequence, r.place) for r in train})} places, " \
          f"conditions {sorted({r.condition for r in train})}"
    if args.val_out is not None:
        write_manifest(val, args.val_out, relative=not args.absolute)
        msg += f"; {args.val_out}: {len(val)} held-out images"
    print(msg)
    return 0
