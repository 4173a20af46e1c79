"""`dejavu-ros evaluate`: the paper's place-recognition evaluation of a model and the baselines."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from .errors import CliError


def add_parser(subparsers) -> None:
    from ..evaluation.run import METHODS, EvalSettings

    d = EvalSettings()
    p = subparsers.add_parser("evaluate", help="ROC AUC / Recall@K of DVF+CX and baselines on a manifest",
                              description="All-pairs contextual similarity → AUC per condition pair, "
                                          "within/cross-condition means, Recall@K, plots and summary.json.")
    p.add_argument("--manifest", action="append", required=True, metavar="CSV", help="manifest (repeatable)")
    p.add_argument("--model", default="", help="DVF weights (.safetensors); default: the shipped model")
    p.add_argument("--out", required=True, help="output folder (summary.json, *.png)")
    p.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated subset of {','.join(METHODS)}")
    p.add_argument("--max-images", type=int, default=0, help="evaluate at most this many images "
                   "(whole places, spread evenly; 0 = all)")
    p.add_argument("--grid-max-side", type=int, default=d.grid_max_side,
                   help="CX grid cap in cells (all-pairs cost grows with its 4th power)")
    p.add_argument("--max-side", type=int, default=d.max_side, help="longer image side before features")
    p.add_argument("--min-height", type=int, default=d.min_height, help="small images are upsampled to this")
    p.add_argument("--max-features", type=int, default=d.max_features, help="keypoints per image for ORB/SIFT")
    p.add_argument("--positive-radius", type=float, default=0.0,
                   help="places within this distance (index steps or metres) count as the same place")
    p.add_argument("--ignore-radius", type=float, default=0.0,
                   help="pairs farther than --positive-radius but within this are not scored")
    p.add_argument("--device", default="cpu", help="DVF device (cpu, cuda, auto)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (0 = torch's default). 1 by default: the many small CX calls "
                        "slow down tens of times with 2 threads when another process holds a core")
    p.add_argument("--no-plots", action="store_true", help="write summary.json only")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..evaluation.run import METHODS, EvalSettings, evaluate
    from ..training.manifest import read_many
    from ..training.validation import subsample_places

    methods = [m for m in args.methods.split(",") if m]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown or not methods:
        raise CliError(f"--methods: unknown {unknown or 'empty list'} (known: {', '.join(METHODS)})")
    if args.grid_max_side < 1 or args.max_side < 0 or args.max_images < 0 or args.threads < 0:
        raise CliError("--grid-max-side must be ≥ 1, --max-side, --max-images and --threads ≥ 0")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    records = read_many(args.manifest, min_conditions=1)
    if args.max_images:
        records = subsample_places(records, args.max_images)
    extractor = None
    if "dvf" in methods:
        from ..features.config import FeatureConfig
        from ..features.extractor import FeatureExtractor

        extractor = FeatureExtractor.from_config(FeatureConfig(model=args.model, device=args.device, max_side=0,
                                                                threads=args.threads))
    settings = EvalSettings(methods=methods, min_height=args.min_height, max_side=args.max_side,
                            grid_max_side=args.grid_max_side, max_features=args.max_features,
                            positive_radius=args.positive_radius, ignore_radius=args.ignore_radius)
    summary, results, images = evaluate(records, extractor, settings, progress=not args.no_progress)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    if not args.no_plots:
        _plots(out, summary, results, records, images, extractor)
    for name, m in summary["methods"].items():
        print(f"{name:12s} auc_within={m['auc_within']} auc_cross={m['auc_cross']} "
              f"R@1={m['recall@1']} R@5={m['recall@5']}")
    print(f"wrote {out / 'summary.json'}")
    return 0


def _plots(out: Path, summary, results, records, images, extractor) -> None:
    import numpy as np

    from ..evaluation import plots

    plots.curves(results, "roc", out / "roc.png")
    plots.curves(results, "pr", out / "pr.png")
    for name in results:
        plots.auc_heatmap(name, summary["methods"][name], out / f"auc_matrix_{name}.png")
    picks = [int(i) for i in np.linspace(0, len(records) - 1, min(4, len(records))).round()]
    if extractor is not None:
        plots.feature_images([images[i] for i in picks], [extractor.extract(images[i]) for i in picks],
                             out / "features_pca.png")
    best = "dvf" if "dvf" in results else next(iter(results))
    if len({r.condition for r in records}) > 1:
        plots.retrievals(results[best].similarity, records, images, picks, out / f"retrievals_{best}.png")
