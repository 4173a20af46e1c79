"""Per-stage wall-clock timing of one frame (the ``timings_ms`` of every result)."""
from __future__ import annotations

import time
from contextlib import contextmanager

import torch


class StageTimer:
    """Milliseconds per named stage; on CUDA each stage waits for the device, so the time is the stage's own."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.ms: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            self.ms[name] = self.ms.get(name, 0.0) + (time.perf_counter() - start) * 1e3
