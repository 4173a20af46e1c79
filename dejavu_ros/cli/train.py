"""`dejavu-ros train`: weakly supervised DVF training from image manifests."""
from __future__ import annotations

import argparse
import json

from .. import schema
from .errors import CliError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("train", help="train DVF with the contextual triplet loss",
                              description="Train DVF on manifests (see 'dejavu-ros make-manifest'). "
                                          "Runs under torchrun for several processes/GPUs.")
    p.add_argument("--manifest", action="append", required=True, metavar="CSV",
                   help="training manifest (repeatable: several data sets are mixed)")
    p.add_argument("--val-manifest", action="append", default=[], metavar="CSV",
                   help="held-out manifest for periodic validation (repeatable: each is one split, named "
                        "by its file name, scored on its own)")
    p.add_argument("--out", required=True, help="output folder (checkpoints, log.csv, validation.csv)")
    p.add_argument("--config", default=None, help="training YAML (see config/train.yaml)")
    p.add_argument("--resume", default=None, metavar="CKPT",
                   help="continue from a checkpoint (its *_state.pt restores the optimizer)")
    p.add_argument("--max-minutes", type=float, default=0.0, help="stop after this much wall time (0 = no limit)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    from ..training.config import TrainConfig

    schema.add_arguments(p, TrainConfig)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..training.config import load_train_config
    from pathlib import Path

    from ..datasets.manifest import read_manifest, read_many
    from ..training.trainer import Trainer

    from .outputs import output_folder

    if args.max_minutes < 0:
        raise CliError(f"--max-minutes must be ≥ 0, got {args.max_minutes}")
    output_folder(args.out, "--out")
    cfg = load_train_config(args.config, schema.overrides_from_args(args))
    train = read_many(args.manifest)
    val = {}
    for path in args.val_manifest:
        name = Path(path).stem
        if name in val:
            raise CliError(f"--val-manifest: two splits are named {name!r}; give the files distinct names")
        val[name] = read_manifest(path, min_conditions=1)
    # the checkpoint records the manifests by name: a shared weights file carries no home paths
    trainer = Trainer(train, val, cfg, args.out, resume=args.resume, max_minutes=args.max_minutes,
                      progress=not args.no_progress, sources=[Path(m).name for m in args.manifest])
    summary = trainer.run()
    if trainer.dist.main:
        print(json.dumps({k: summary[k] for k in ("steps", "epochs", "wall_time_s", "best_metric", "best_value",
                                                  "best_step", "last_validation")}))
    return 0
