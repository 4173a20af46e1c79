"""`dejavu-ros evaluate`: the paper's place-recognition evaluation of a model and the baselines."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from .. import schema
from ..evaluation.config import METHODS, EvalSettings
from ..features.config import FeatureConfig
from .common import add_model_arguments
from .errors import CliError
from .outputs import output_folder

_FLAGS = {"--max-side": "max_side", "--min-height": "min_height", "--grid-max-side": "grid_max_side",
          "--max-features": "max_features", "--positive-radius": "positive_radius",
          "--ignore-radius": "ignore_radius"}


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="ROC AUC / Recall@K of DVF+CX and baselines on a manifest",
                              description="All-pairs contextual similarity → AUC per condition pair, "
                                          "within/cross-condition means, Recall@K, plots and summary.json.")
    p.add_argument("--manifest", action="append", required=True, metavar="CSV", help="manifest (repeatable)")
    add_model_arguments(p)
    schema.add_flag(p, "--threads", FeatureConfig, "threads")
    p.add_argument("--out", required=True, type=Path, help="output folder (summary.json, *.png)")
    p.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated subset of {','.join(METHODS)}")
    p.add_argument("--max-images", type=int, default=0, help="evaluate at most this many images "
                   "(whole places, spread evenly; 0 = all)")
    for flag, name in _FLAGS.items():
        schema.add_flag(p, flag, EvalSettings, name)
    p.add_argument("--no-plots", action="store_true", help="write summary.json only")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..datasets.manifest import read_many
    from ..evaluation.run import evaluate
    from ..training.validation import subsample_places

    methods = [m for m in args.methods.split(",") if m]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown or not methods:
        raise CliError(f"--methods: unknown {unknown or 'empty list'} (known: {', '.join(METHODS)})")
    if args.max_images < 0:
        raise CliError(f"--max-images must be ≥ 0, got {args.max_images}")
    values = schema.flag_values(args)
    out = output_folder(args.out, "--out")
    if values["threads"]:
        import torch

        torch.set_num_threads(values["threads"])
    records = read_many(args.manifest, min_conditions=1)
    if args.max_images:
        records = subsample_places(records, args.max_images)
    extractor = None
    if "dvf" in methods:
        from ..features.extractor import FeatureExtractor

        extractor = FeatureExtractor.from_config(FeatureConfig(model=values["model"], device=values["device"],
                                                               max_side=0, threads=values["threads"]))
    settings = EvalSettings(methods=methods, **{name: values[name] for name in _FLAGS.values()})
    summary, results, images = evaluate(records, extractor, settings, progress=not args.no_progress)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    if not args.no_plots:
        _plots(out, summary, results, records, images, extractor)
    for name, m in summary["methods"].items():
        print(f"{name:12s} auc_within={m['auc_within']} auc_cross={m['auc_cross']} "
              f"auc_pooled={m['auc_cross_pooled']} R@1={m['recall@1']} R@5={m['recall@5']}")
    print("auc_cross = mean over condition pairs; auc_pooled = all cross-condition pairs at once (the ROC plot)")
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
                             out / "features_pca.png",
                             titles=[f"{records[i].sequence}:{records[i].place}/{records[i].condition}" for i in picks])
    best = "dvf" if "dvf" in results else next(iter(results))
    if len({r.condition for r in records}) > 1:
        plots.retrievals(results[best].similarity, records, images, picks, out / f"retrievals_{best}.png")
