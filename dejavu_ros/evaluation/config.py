"""Settings of one evaluation run (``dejavu-ros evaluate`` flags), declared in the one config schema."""
from __future__ import annotations

from dataclasses import dataclass

from ..schema import param, param_like
from ..similarity.config import SimilarityConfig
from .baselines import BASELINES

#: methods an evaluation can score: DVF and the hand-crafted baselines (evaluation/baselines.py)
METHODS = ("dvf",) + BASELINES
#: Recall@K reported
RECALL_KS = (1, 5, 10)


@dataclass
class EvalSettings:
    methods: list[str] = param(list(METHODS), f"Methods to score (subset of {', '.join(METHODS)})")
    min_height: int = param(128, "Small images are upsampled to at least this height (Nordland's 32 px rows)",
                            low=128, high=4096)
    max_side: int = param(320, "Longer image side before feature extraction", low=128, high=8192)
    grid_stride: int = param_like(SimilarityConfig, "grid_stride")
    grid_max_side: int = param(16, "CX grid cap in cells (all-pairs cost grows with its 4th power)", low=1,
                               high=512)
    max_features: int = param(128, "Keypoints per image for ORB/SIFT (about the DVF grid, so CX costs match)",
                              low=1, high=100000)
    positive_radius: float = param(0.0, "Places within this distance (index steps or metres) count as the same "
                                   "place", low=0.0, high=1e9)
    ignore_radius: float = param(0.0, "Pairs farther than positive_radius but within this are not scored",
                                 low=0.0, high=1e9)
    memory_budget_mb: int = param(8, "Peak memory of one CX chunk (small chunks stay in cache: 10x faster "
                                  "than 64 MB on a 2-core CPU)", low=1, high=1 << 20)

    @property
    def ks(self) -> tuple[int, ...]:
        return RECALL_KS
