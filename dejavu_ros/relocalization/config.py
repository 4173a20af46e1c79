"""Settings of the relocalization engine (shortlist, re-rank, verification, sequences)."""
from __future__ import annotations

from dataclasses import dataclass

from ..schema import param


@dataclass
class EngineConfig:
    shortlist_k: int = param(20, "Keyframes kept by the global-descriptor shortlist", low=1, high=10000,
                             dynamic=True)
    verify_top_m: int = param(3, "Best CX candidates that go through sparse verification", low=0, high=100,
                              dynamic=True)
    publish_top_k: int = param(5, "Ranked candidates reported per frame", low=1, high=100, dynamic=True)
    sequence_length: int = param(0, "Fuse scores over the last N frames along keyframe sequences (0 = off)",
                                 low=0, high=100, dynamic=True)
