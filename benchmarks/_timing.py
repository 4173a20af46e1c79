"""Median-of-repeats timing shared by the benchmark scripts (stdlib only)."""
from __future__ import annotations

import statistics
import time
from typing import Callable


def median_ms(fn: Callable[[], object], repeats: int = 5, warmup: int = 1, sync: Callable[[], None] | None = None) -> dict:
    """Run ``fn`` ``warmup`` times, then ``repeats`` times; return min/median/max in milliseconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if sync is not None:
            sync()
        times.append((time.perf_counter() - start) * 1e3)
    return {"median_ms": round(statistics.median(times), 3), "min_ms": round(min(times), 3),
            "max_ms": round(max(times), 3), "repeats": repeats}


def paired_ms(fn_a: Callable[[], object], fn_b: Callable[[], object], repeats: int = 5, warmup: int = 1,
              sync: Callable[[], None] | None = None) -> dict:
    """Time ``fn_a`` and ``fn_b`` in turn (A B A B …) and report each one's median and the median of
    the per-pair ratios B/A: a machine whose speed drifts during the run slows both sides of a pair."""
    def once(fn):
        start = time.perf_counter()
        fn()
        if sync is not None:
            sync()
        return (time.perf_counter() - start) * 1e3

    for _ in range(warmup):
        fn_a(), fn_b()
    a, b = [], []
    for _ in range(repeats):
        a.append(once(fn_a))
        b.append(once(fn_b))
    return {"a_median_ms": round(statistics.median(a), 3), "b_median_ms": round(statistics.median(b), 3),
            "ratio_b_over_a": round(statistics.median(y / x for x, y in zip(a, b)), 2), "repeats": repeats}
