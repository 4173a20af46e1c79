"""Settings of the relocalization engine (shortlist, re-rank, verification, sequences) and of the
trust decision that says whether a place may be published as "relocalized"."""
from __future__ import annotations

from dataclasses import dataclass

from ..schema import param


@dataclass
class EngineConfig:
    shortlist_k: int = param(20, "Keyframes kept for the full CX re-rank: the global descriptor's best, or the "
                             "coarse pre-rank's in route localization (engine.prerank_k); more finds the right "
                             "place more often across seasons, at ~2 ms of CX per keyframe on one CPU core (the "
                             "trust calibration was made at 20)", low=1, high=10000,
                             dynamic=True)
    prerank_k: int = param(1000, "Route localization (sequence_length > 0): keyframes (the global descriptor's "
                           "best) scored by the coarse CX pre-rank, whose best shortlist_k go on to the full CX "
                           "re-rank and which the route search scores map-wide; ~11-25 µs per keyframe on one "
                           "CPU thread (0 = off; single frames always shortlist by the global descriptor)",
                           low=0, high=1 << 30, dynamic=True)
    verify_top_m: int = param(3, "Best CX candidates that go through sparse verification (the best candidate "
                              "of another place is verified too, as the trust decision's runner-up)",
                              low=0, high=100, dynamic=True)
    publish_top_k: int = param(5, "Ranked candidates reported per frame", low=1, high=100, dynamic=True)
    faiss_min_keyframes: int = param(50000, "Maps with at least this many keyframes shortlist with a FAISS "
                                     "IVF-PQ index (stored in the map); smaller maps with an exact matmul",
                                     low=1, high=1 << 40)
    faiss_nprobe: int = param(32, "FAISS shortlist: inverted lists scanned per query (recall against speed)",
                              low=1, high=65536, dynamic=True)
    overlap_head: str = param("", "Box-embedding overlap head (safetensors): every candidate reports its overlap "
                              "with the query and their relative scale; empty = models/overlap_head.safetensors "
                              "when present (none is shipped: README, overlap), 'off' = none", dynamic=False)
    min_overlap: float = param(0.0, "Candidates whose estimated overlap with the query (either way) is below this "
                               "are not verified (0 = verify the best M regardless)", low=0.0, high=1.0,
                               dynamic=True)
    sequence_length: int = param(10, "Route localization over the last N frames: sequence search along each "
                                 "traversal, or the odometry filter when odometry arrives (0 = single frames)",
                                 low=0, high=100, dynamic=True)
    route_baseline_frames: int = param(50, "Route localization: each keyframe's score is taken relative to its "
                                       "own mean over this many recent frames (with odometry, frames after the "
                                       "robot moved half the median distance between consecutive keyframes of "
                                       "a drive), so keyframes that resemble every query of another condition "
                                       "(hubs) stop winning the route; 4 bytes per keyframe and frame (0 = off)",
                                       low=0, high=1000, dynamic=True)


@dataclass
class TrustConfig:
    model: str = param("", "Calibration of the trust decision (.json); empty = the one shipped in models/, "
                       "calibrated for the default DVF model (a calibration of another model: a warning, and "
                       "/diagnostics at WARN)")
    min_confidence: float = param(0.997, "Publish a pose only when the calibrated probability that its place is "
                                  "right reaches this (the shipped calibration's operating point; README, "
                                  "'Trust')", low=0.0, high=1.0, dynamic=True)
    other_places: int = param(2, "Runner-up places verified besides the best candidates: the winner's evidence "
                              "is compared with the strongest of them", low=1, high=20, dynamic=True)
    place_radius_m: float = param(15.0, "Keyframes closer than this to a candidate show the same place; the "
                                  "runner-up the winner is tested against lies farther away", low=0.0,
                                  high=1e6, dynamic=True)
