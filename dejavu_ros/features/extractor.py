"""Running DVF on images: device choice, eval/no-grad, precision and size handling."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..errors import DejavuError
from ..resources import default_model_path
from .checkpoint import CheckpointError, fingerprint, load_checkpoint
from .config import FeatureConfig
from .dvf import DVF, MIN_SIDE, DVFConfig, unit_channels
from .preprocess import pad_to_min_side, resize, to_tensor

log = logging.getLogger(__name__)


def resolve_device(spec: str) -> torch.device:
    """``auto`` → CUDA when present, else CPU; ``cuda[:i]`` must exist."""
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DejavuError(f"device {spec!r} requested but CUDA is not available on this machine")
        dev = torch.device(spec)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DejavuError(f"device {spec!r}: only {torch.cuda.device_count()} CUDA device(s) present")
        return dev
    raise DejavuError(f"unknown device {spec!r} (expected auto, cpu, cuda or cuda:N)")


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The autocast type of ``features.precision`` on ``device``; None: the model runs in fp32.
    On the CPU only bf16 autocasts (oneDNN's bf16 convolutions; fp16 convolutions are not faster there)."""
    if device.type == "cuda" and precision in ("fp16", "bf16"):
        return torch.float16 if precision == "fp16" else torch.bfloat16
    if device.type == "cpu" and precision == "bf16":
        return torch.bfloat16
    return None


def cpu_has_native_bf16() -> bool:
    """Whether the CPU computes in bf16 natively (x86 AVX512-BF16 or AMX, Arm BF16); elsewhere it is
    emulated and slower than fp32. False where /proc/cpuinfo cannot be read."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16", "bf16"))


class FeatureExtractor:
    """A DVF model ready for inference: image arrays in, dense descriptor maps out."""

    def __init__(self, model: DVF, fingerprint_hex: str | None = None, device: str | torch.device = "cpu",
                 precision: str = "fp32", channels_last: bool = FeatureConfig.channels_last, pad_small: bool = True,
                 source: str = "", backend: str = "torch", threads: int = 1) -> None:
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.model = model.to(self.device).eval()
        self.backend = backend
        self._runtime = None
        #: OpenVINO computing in bf16 (features.precision bf16 applies to it as to torch's autocast)
        self._runtime_bf16 = backend == "openvino" and precision == "bf16"
        if backend in ("onnxruntime", "openvino"):
            if self.device.type != "cpu":
                raise DejavuError(f"features.backend {backend} runs on the CPU; features.device is {self.device}")
            from .onnx_backend import OnnxRuntimeDVF, OpenVinoDVF, export_bytes

            if backend == "openvino":
                self._runtime = OpenVinoDVF(export_bytes(self.model), threads=threads,
                                            precision="bf16" if self._runtime_bf16 else "fp32")
            else:
                self._runtime = OnnxRuntimeDVF(export_bytes(self.model), threads=threads)
        # in place: the caller's model runs in the layout asked for here (False = NCHW, also for a
        # model an earlier extractor converted)
        self.model = self.model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        self.channels_last = channels_last
        self.fingerprint = fingerprint_hex or fingerprint(model)
        self.precision = precision
        if self._runtime is not None and precision != "fp32" and not self._runtime_bf16:
            log.warning("features.precision %s applies to the torch backend (and bf16 to openvino): %s runs fp32",
                        precision, backend)
        elif self.device.type == "cpu" and precision == "fp16":
            log.warning("features.precision fp16 applies on CUDA only: the CPU runs fp32 (bf16 autocasts on the CPU)")
        elif self.device.type == "cpu" and precision == "bf16" and not cpu_has_native_bf16():
            log.warning("features.precision bf16: this CPU has no native bf16 (AVX512-BF16/AMX), so %s",
                        "OpenVINO runs fp32" if backend == "openvino" else "it is emulated and slower than fp32")
        self.pad_small = pad_small
        self.source = source

    @classmethod
    def from_config(cls, cfg: FeatureConfig) -> "FeatureExtractor":
        """Load ``cfg.model`` or, when empty, the default model shipped in models/."""
        path = Path(cfg.model) if cfg.model else default_model_path()
        if not cfg.model and not path.is_file():
            raise CheckpointError(f"the default model {path} is missing; pass a model file explicitly")
        model, _meta = load_checkpoint(path)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)  # process-wide: the engine runs one model per process
        return cls(model, device=cfg.device, precision=cfg.precision, channels_last=cfg.channels_last,
                   pad_small=cfg.pad_small, source=str(path), backend=cfg.backend, threads=cfg.threads)

    @classmethod
    def random(cls, seed: int = 0, descriptor_dim: int = 10, light: bool = True, device: str = "cpu") -> "FeatureExtractor":
        """An untrained network (deterministic): for tests and synthetic benchmarks."""
        torch.manual_seed(seed)
        cfg = DVFConfig.light(descriptor_dim) if light else DVFConfig(descriptor_dim=descriptor_dim)
        return cls(DVF(cfg), device=device, source=f"random(seed={seed})")

    @property
    def model_config(self) -> DVFConfig:
        return self.model.cfg

    @property
    def descriptor_dim(self) -> int:
        return self.model.cfg.descriptor_dim

    def prepare(self, image: np.ndarray, size: tuple[int, int] | None = None) -> torch.Tensor:
        """Array → 1×3×H×W on the device, scaled as the model was trained, optionally resized."""
        batch = to_tensor(image, self.model.cfg.scaling, self.model.cfg.colour).to(self.device)
        if size is not None:
            batch = resize(batch, size)
        return batch

    @torch.inference_mode()
    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """B×3×H×W → B×n×H×W float32, padding small inputs when allowed."""
        height, width = batch.shape[-2:]
        if min(height, width) < MIN_SIDE:
            if not self.pad_small:
                raise DejavuError(f"image {width}×{height} is smaller than DVF's minimum side {MIN_SIDE} px")
            batch, _ = pad_to_min_side(batch)
        if self._runtime is not None:
            out = self._runtime(batch)[..., :height, :width]
            return self._unit_again(out) if self._runtime_bf16 else out.contiguous()
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        dtype = autocast_dtype(self.device, self.precision)
        if dtype is None:
            return self.model(batch)[..., :height, :width].contiguous()
        with torch.autocast(self.device.type, dtype=dtype):
            out = self.model(batch)[..., :height, :width].float()
        return self._unit_again(out)

    def _unit_again(self, out: torch.Tensor) -> torch.Tensor:
        """A reduced-precision output normalised again in float32: bf16/fp16 rounding leaves norms
        0.1–0.5 % off 1, and the matchers would normalise the whole map once per keyframe
        (matching/dense_matching.py: unit_map)."""
        return unit_channels(out).contiguous() if self.model.cfg.normalize else out.contiguous()

    def extract(self, image: np.ndarray, size: tuple[int, int] | None = None) -> torch.Tensor:
        """One H×W×3 image → n×H×W descriptors (at ``size`` = (w, h) when given)."""
        return self.forward(self.prepare(image, size))[0]

    def extract_batch(self, images: Sequence[np.ndarray], size: tuple[int, int] | None = None) -> list[torch.Tensor]:
        """Several images; stacked into one batch when they share a size."""
        if not images:
            return []
        batches = [self.prepare(im, size) for im in images]
        if len({tuple(b.shape) for b in batches}) == 1:
            return list(self.forward(torch.cat(batches)))
        return [self.forward(b)[0] for b in batches]
