"""`dejavu-ros train-overlap --data DIR --out HEAD.safetensors`: train the DVF overlap (box) head.

DIR holds ``tilde_webcam``, ``oxblue_webcam`` and ``grief_seasons`` (their SOURCE.txt says where to get
them; a missing one is skipped). Random 4:3 crops of their frames are described as the engine describes
a frame; the head learns, on the frozen CX grids of ``--model``, boxes whose overlaps and volume ratios
are the crops' exact overlaps and scales (see dejavu_ros/training/overlap_head.py). Use it with
``engine.overlap_head: HEAD.safetensors``. Prints a JSON summary.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from .. import schema
from ..features.config import FeatureConfig
from .errors import CliError
from .outputs import output_file


def add_parser(subparsers) -> None:
    from ..training.overlap_head import OverlapTrainConfig

    p = subparsers.add_parser("train-overlap", help="train the DVF overlap head on crops of webcams",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="folder with tilde_webcam, oxblue_webcam, grief_seasons")
    p.add_argument("--out", type=Path, required=True, help="head weights to write (.safetensors)")
    p.add_argument("--pool-cache", type=Path, help="described crops: read from here when the file exists, "
                   "else written here (retraining then skips the network)")
    schema.add_flag(p, "--model", FeatureConfig, "model")
    schema.add_flag(p, "--threads", FeatureConfig, "threads")
    schema.add_arguments(p, OverlapTrainConfig)
    p.set_defaults(func=run)


def run(args) -> int:
    import numpy as np
    import torch

    from ..features.extractor import FeatureExtractor
    from ..features.overlap_head import save_overlap_head
    from ..training.overlap_head import (
        OverlapTrainConfig,
        describe_crops,
        load_pool,
        save_pool,
        train_overlap_head,
        training_scenes,
    )

    out = output_file(args.out, "--out")
    cache = args.pool_cache
    cache_out = None if cache is None or cache.is_file() else output_file(cache, "--pool-cache")
    cfg = schema.apply_flat(OverlapTrainConfig(), schema.overrides_from_args(args), schema.labels_from_args(args))
    scenes = training_scenes(args.data, cfg)
    if not scenes:
        raise CliError(f"--data {args.data}: no tilde_webcam, oxblue_webcam or grief_seasons frames in it")
    values = schema.flag_values(args)
    if values["threads"]:
        torch.set_num_threads(int(values["threads"]))
    extractor = FeatureExtractor.from_config(FeatureConfig(device="cpu", model=values["model"]))
    t0 = time.perf_counter()
    if cache is not None and cache_out is None:
        pool = load_pool(cache)
    else:
        pool = describe_crops(scenes, extractor, cfg, np.random.default_rng(cfg.seed),
                              progress=lambda i, n: print(f"described scene {i}/{n}", flush=True))
        if cache_out is not None:
            save_pool(pool, cache_out)
    t1 = time.perf_counter()
    head, losses = train_overlap_head(pool, cfg, extractor.descriptor_dim,
                                      progress=lambda step, loss: print(f"step {step}: loss {loss:.4f}", flush=True))
    t2 = time.perf_counter()
    info = {"steps": cfg.steps, "crops": len(pool.scenes), "scenes": len(scenes),
            "final_loss": round(float(np.mean(losses[-100:])), 4), "describe_s": round(t1 - t0, 1),
            "train_s": round(t2 - t1, 1), "config": schema.to_flat(cfg)}
    save_overlap_head(head, out, extractor.fingerprint, info)
    print(json.dumps({"out": str(out), **{k: v for k, v in info.items() if k != "config"}}))
    return 0
