"""Run-time settings of the feature stage (how the network runs, not what it is)."""
from __future__ import annotations

from dataclasses import dataclass

from ..schema import param


@dataclass
class FeatureConfig:
    model: str = param("", "DVF weights (.safetensors); empty = the default model shipped in models/")
    device: str = param("auto", "Inference device: auto, cpu, cuda or cuda:N")
    backend: str = param("torch", "Inference engine: torch, onnxruntime or openvino (both CPU; the model is "
                         "exported to ONNX when the node starts)", choices=("torch", "onnxruntime", "openvino"))
    precision: str = param("fp32", "Inference precision: fp16/bf16 autocast on CUDA; bf16 also on the CPU "
                           "(torch and openvino backends), worth it where the CPU has native bf16 (AVX512-BF16, AMX)",
                           choices=("fp32", "fp16", "bf16"))
    channels_last: bool = param(True, "Run the torch backend's convolutions in channels_last memory format "
                                 "(oneDNN's faster layout: 1.2-1.4x on the CPU; descriptors within 1e-5 of NCHW; not yet "
                                 "measured on CUDA)")
    max_side: int = param(640, "Images with a longer side are downscaled to this before DVF (0 = never)",
                          low=0, high=8192)
    threads: int = param(1, "CPU threads for torch (0 = torch's default, all cores). 1 is the default because "
                         "torch's thread pool slows down many-fold when other processes share the cores",
                         low=0, high=256)
    pad_small: bool = param(True, "Pad inputs with a side under 128 px (edge pixels repeated) instead of refusing them")
