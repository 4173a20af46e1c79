"""DVF inference time per frame and CX time per pair, printed as JSON.

    python benchmarks/bench_features_cx.py [--device cpu|cuda] [--model PATH] [--repeats 5] [--runtimes onnxruntime openvino openvino-bf16 torch-bf16 torch-nchw]

DVF at 256×256, 320×240 and 640×480 (the default model, and the light, mid and paper-size networks); CX per pair
at 32×32, 64×64 and 128×128 grids, one pair and one query against 64 keyframes in a batch. ``--runtimes``
also runs the default model through those CPU backends (features.backend), timed round robin with torch
frame by frame, so that a change in the machine's load hits every backend alike; their speed-ups over
torch are the ratios of those medians.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import median_ms  # noqa: E402

from dejavu_ros.features.config import FeatureConfig  # noqa: E402
from dejavu_ros.features.dvf import DVF, DVFConfig  # noqa: E402
from dejavu_ros.features.extractor import FeatureExtractor  # noqa: E402
from dejavu_ros.resources import default_model_path  # noqa: E402
from dejavu_ros.similarity.cx import contextual_similarity  # noqa: E402


def runtime_round_robin(args, rng) -> dict:
    """The default model through torch and each of ``args.runtimes``, one frame each in turn."""
    def extractor(name: str) -> FeatureExtractor:
        # torch-bf16 / openvino-bf16: features.precision bf16; torch-nchw: with features.channels_last off
        backend, _, variant = name.partition("-")
        return FeatureExtractor.from_config(FeatureConfig(
            model=args.model, device="cpu", backend=backend, precision=variant if variant == "bf16" else "fp32",
            channels_last=variant != "nchw", threads=args.threads))

    backends = {name: extractor(name) for name in ("torch", *args.runtimes)}
    out = {}
    for w, h in [(256, 256), (320, 240), (640, 480)]:
        image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        times = {name: [] for name in backends}
        for name, fe in backends.items():
            fe.extract(image)  # warm-up
        for _ in range(args.repeats):
            for name, fe in backends.items():
                times[name].append(median_ms(lambda: fe.extract(image), 1, warmup=0)["median_ms"])
        medians = {name: statistics.median(t) for name, t in times.items()}
        out[f"{w}x{h}"] = {"median_ms": {name: round(m, 1) for name, m in medians.items()},
                           "speedup_over_torch": {name: round(medians["torch"] / m, 2)
                                                  for name, m in medians.items() if name != "torch"}}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch default)")
    p.add_argument("--model", default="")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "bf16"))
    p.add_argument("--skip-128", action="store_true", help="skip the 128×128 batched CX (slow on CPU)")
    p.add_argument("--runtimes", nargs="*", default=[], choices=("onnxruntime", "openvino", "openvino-bf16", "torch-bf16", "torch-nchw"),
                   help="also the default model through these CPU backends (torch-bf16: torch under bf16 "
                        "autocast; openvino-bf16: OpenVINO computing in bf16; torch-nchw: torch with "
                        "features.channels_last off), round robin with torch")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else None
    models = {}
    if args.model or default_model_path().is_file():
        models["default"] = FeatureExtractor.from_config(FeatureConfig(model=args.model, device=args.device,
                                                                       precision=args.precision, threads=args.threads))
    models["light_random"] = FeatureExtractor(DVF(DVFConfig.light()), device=dev, precision=args.precision)
    models["mid_random"] = FeatureExtractor(DVF(DVFConfig.mid()), device=dev, precision=args.precision)
    models["paper_size_random"] = FeatureExtractor(DVF(DVFConfig()), device=dev, precision=args.precision)
    rng = np.random.default_rng(0)
    out = {"device": str(dev), "torch": torch.__version__, "threads": torch.get_num_threads(),
           "machine": platform.machine(), "dvf_ms_per_frame": {}, "cx_ms": {}}
    for name, fe in models.items():
        for w, h in [(256, 256), (320, 240), (640, 480)]:
            image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
            out["dvf_ms_per_frame"][f"{name}@{w}x{h}"] = median_ms(lambda: fe.extract(image), args.repeats,
                                                                   sync=sync)
    if args.runtimes:
        out["runtimes"] = runtime_round_robin(args, rng)
    for side in (32, 64, 128):
        q = torch.nn.functional.normalize(torch.randn(10, side, side, device=dev), dim=0)
        keys = torch.nn.functional.normalize(torch.randn(64, 10, side, side, device=dev), dim=1)
        out["cx_ms"][f"{side}x{side}_single_pair"] = median_ms(
            lambda: contextual_similarity(q, keys[:1]), args.repeats, sync=sync)
        if side == 128 and args.skip_128:
            continue
        batched = median_ms(lambda: contextual_similarity(q, keys), max(1, args.repeats // 2), sync=sync)
        batched["per_pair_ms"] = round(batched["median_ms"] / 64, 3)
        out["cx_ms"][f"{side}x{side}_batch64"] = batched
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
