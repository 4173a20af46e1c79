"""`dejavu-ros export-onnx OUT.onnx [--model M]`: the DVF network as an ONNX graph (any image size).

Input ``image`` is B×3×H×W float32 in the model's input convention (the tensor the extractor feeds
torch); output ``descriptors`` is B×n×H×W. Batch, height and width are dynamic; opset 17; checked
with onnx's checker. Feed it to ONNX Runtime (``features.backend: onnxruntime``) or TensorRT.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .. import schema
from ..features.config import FeatureConfig
from .outputs import output_file


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("export-onnx", help="export the DVF network to ONNX", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path, help="ONNX file to write")
    schema.add_flag(p, "--model", FeatureConfig, "model")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..features.checkpoint import load_checkpoint
    from ..features.onnx_backend import export
    from ..resources import default_model_path

    out = output_file(args.out, "out")
    values = schema.flag_values(args)
    path = Path(values["model"]) if values["model"] else default_model_path()
    model, _meta = load_checkpoint(path)
    export(model, out, opset=args.opset)
    n = model.cfg.descriptor_dim
    print(f"wrote {out}: DVF n={n}, input 'image' Bx3xHxW ({model.cfg.scaling} scaling, {model.cfg.colour}), "
          f"output 'descriptors' Bx{n}xHxW, opset {args.opset}")
    return 0
