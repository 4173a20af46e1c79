"""DVF as an ONNX graph: export (any image size), and ONNX Runtime or OpenVINO as the extractor's
CPU backend (both run the same exported graph).

The exported graph takes exactly the tensor the torch extractor feeds the network — B×3×H×W float32,
already in the model's input convention (features/preprocess.py) — and returns the B×n×H×W
descriptors, with batch, height and width dynamic. It is also what a Jetson user hands TensorRT
(``trtexec --onnx=dvf.onnx --fp16 --minShapes=image:1x3x128x128 --optShapes=image:1x3x480x640
--maxShapes=image:1x3x1080x1920``).
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import torch

from ..errors import DejavuError
from .dvf import DVF

#: ONNX opset of the export (Resize with align_corners and dynamic sizes, AveragePool with ceil_mode)
OPSET = 17
INPUT, OUTPUT = "image", "descriptors"


class OnnxError(DejavuError):
    """The ONNX tooling is missing, or an exported graph does not check out."""


def export_bytes(model: DVF, example_size: tuple[int, int] = (320, 240), opset: int = OPSET) -> bytes:
    """The DVF as a serialised ONNX model (dynamic batch, height and width), checked with onnx's checker."""
    try:
        import onnx
    except ImportError:
        raise OnnxError("ONNX export needs the onnx package (pip install onnx)") from None
    model = model.eval()
    width, height = example_size
    example = torch.rand(1, 3, height, width)
    buffer = io.BytesIO()
    dynamic = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():  # the tracer notes the input checks it cannot record: shapes are dynamic anyway
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), buffer, input_names=[INPUT], output_names=[OUTPUT],
                          dynamic_axes={INPUT: dynamic, OUTPUT: dynamic}, opset_version=opset, dynamo=False)
    data = buffer.getvalue()
    try:
        onnx.checker.check_model(onnx.load_from_string(data))
    except Exception as exc:  # noqa: BLE001 - the checker raises its own ValidationError types
        raise OnnxError(f"the exported graph does not check out: {exc}") from None
    return data


def export(model: DVF, path: str | Path, opset: int = OPSET) -> Path:
    path = Path(path)
    path.write_bytes(export_bytes(model, opset=opset))
    return path


class OnnxRuntimeDVF:
    """Runs an exported DVF with ONNX Runtime; called like the torch module (B×3×H×W in, out)."""

    def __init__(self, onnx_model: bytes, threads: int = 1) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise OnnxError("features.backend onnxruntime needs the onnxruntime package "
                            "(pip install onnxruntime)") from None
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(onnx_model, options, providers=["CPUExecutionProvider"])

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(batch.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self.session.run([OUTPUT], {INPUT: array})[0])


class OpenVinoDVF:
    """Runs an exported DVF with OpenVINO on the CPU (latency mode); called like the torch module.

    ``precision`` bf16 computes in bf16 where the CPU has it natively (AMX, AVX512-BF16): on a Xeon
    with AMX 4× faster than torch in fp32 (README, Performance); the caller normalises the output
    again in fp32, as for torch's bf16 autocast."""

    def __init__(self, onnx_model: bytes, threads: int = 1, precision: str = "fp32") -> None:
        try:
            import openvino as ov
        except ImportError:
            raise OnnxError("features.backend openvino needs the openvino package (pip install openvino)") from None
        if precision not in ("fp32", "bf16"):
            raise OnnxError(f"features.backend openvino runs fp32 or bf16, not {precision}")
        core = ov.Core()
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        model = core.read_model(model=onnx_model)
        self.request = core.compile_model(model, "CPU", config).create_infer_request()

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(batch.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self.request.infer({0: array})[0].copy())
