"""`dejavu-ros train-keypoints --data DIR --out HEAD.safetensors`: train the DVF keypoint head.

DIR holds ``tilde_webcam`` and ``oxblue_webcam`` (fixed webcams, day and night at the same pixels;
their SOURCE.txt says where to get them). The head learns, on the frozen map of ``--model``, which
day pixels the dense search of a night frame finds again (see dejavu_ros/training/keypoint_head.py).
Use it with ``matching.keypoints: dvf_head`` and ``matching.keypoint_head: HEAD.safetensors``
(maps must be rebuilt: keypoints are chosen when a keyframe is stored). Prints a JSON summary.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from .. import schema
from ..features.config import FeatureConfig
from .errors import CliError
from .outputs import output_file


def add_parser(subparsers) -> None:
    from ..training.keypoint_head import KeypointTrainConfig

    p = subparsers.add_parser("train-keypoints", help="train the DVF keypoint head on day/night webcams",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="folder with tilde_webcam and oxblue_webcam")
    p.add_argument("--out", type=Path, required=True, help="head weights to write (.safetensors)")
    schema.add_flag(p, "--model", FeatureConfig, "model")
    schema.add_flag(p, "--threads", FeatureConfig, "threads")
    schema.add_arguments(p, KeypointTrainConfig)
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from ..features.extractor import FeatureExtractor
    from ..features.keypoint_head import save_head
    from ..training.keypoint_head import KeypointTrainConfig, build_labels, ranking_auc, train_head

    for sub in ("tilde_webcam", "oxblue_webcam"):
        if not (args.data / sub).is_dir():
            raise CliError(f"--data {args.data}: no {sub} folder in it")
    out = output_file(args.out, "--out")
    cfg = schema.apply_flat(KeypointTrainConfig(), schema.overrides_from_args(args), schema.labels_from_args(args))
    values = schema.flag_values(args)
    if values["threads"]:
        torch.set_num_threads(int(values["threads"]))
    fcfg = FeatureConfig(device="cpu", model=values["model"])
    extractor = FeatureExtractor.from_config(fcfg)
    items = build_labels(extractor, args.data, cfg,
                         progress=lambda it: print(f"labelled {it.name}: {len(it.target)} px, "
                                                   f"hit rate {it.extra['hit_rate']:.3f}", flush=True))
    head, losses = train_head(items, cfg, extractor.descriptor_dim)
    auc = ranking_auc(head, items)
    info = {"steps": cfg.steps, "keyframes": len(items), "train_auc": None if math.isnan(auc) else round(auc, 2),
            "final_loss": round(sum(losses[-20:]) / len(losses[-20:]), 4), "config": schema.to_flat(cfg)}
    save_head(head, out, extractor.fingerprint, info)
    print(json.dumps({"out": str(out), **{k: v for k, v in info.items() if k != "config"}}))
    return 0
