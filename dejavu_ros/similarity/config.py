"""Settings of contextual similarity (CX) and the dense grid it runs on."""
from __future__ import annotations

from dataclasses import dataclass

from ..schema import param


@dataclass
class SimilarityConfig:
    grid_stride: int = param(4, "Dense map → CX grid downsampling factor (authors: 4)", low=1, high=64)
    grid_mode: str = param("bilinear", "Interpolation used to make the CX grid",
                           choices=("bilinear", "area", "nearest"))
    grid_max_side: int = param(32, "Cap on the CX grid's longer side in cells (0 = no cap)", low=0, high=512)
    offset: float = param(1.0, "CX offset (authors: 1.0)", low=0.0, high=10.0)
    bandwidth: float = param(0.5, "CX bandwidth h (authors: 0.5)", low=1e-3, high=100.0)
    symmetric: bool = param(True, "Average CX(S,T) and CX(T,S)")
    global_cells: int = param(4, "Global descriptor: pooled layout is cells×cells", low=1, high=16)
    prerank_stride: int = param(4, "Coarse CX pre-rank (engine.prerank_k): the CX grid pooled by this factor "
                                "again (4: 32×16 → 8×4 cells)", low=1, high=64)
    memory_budget_mb: int = param(256, "Peak memory for one batched CX call", low=1, high=1 << 20)
