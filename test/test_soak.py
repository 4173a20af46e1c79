"""A short soak: a few hundred frames through one engine must not grow memory, fds or threads.

The full run (20,000 frames) is ``python benchmarks/soak.py``; this is its quick version for CI.
"""
from __future__ import annotations

import importlib.util
import math
import mmap
import threading

import pytest

from conftest import REPO


def load_soak():
    spec = importlib.util.spec_from_file_location("soak_benchmark", REPO / "benchmarks" / "soak.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


soak = load_soak()


def test_process_figures_see_what_a_leak_would_add(tmp_path):
    """The counters the soak relies on do move when files, threads or memory are held."""
    before = soak.snapshot()
    files = [open(tmp_path / f"f{i}", "w") for i in range(5)]
    stop = threading.Event()
    threads = [threading.Thread(target=stop.wait) for _ in range(3)]
    for thread in threads:
        thread.start()
    block = mmap.mmap(-1, 64 * soak.MB)  # fresh pages from the system, not reused heap
    for offset in range(0, len(block), mmap.PAGESIZE):
        block[offset] = 1
    try:
        held = soak.snapshot()
        assert held["fds"] == before["fds"] + 5
        assert held["python_threads"] == before["python_threads"] + 3
        assert held["os_threads"] >= before["os_threads"] + 3
        assert held["rss_mb"] - before["rss_mb"] > 60
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        for f in files:
            f.close()
        block.close()
    after = soak.snapshot()
    assert after["fds"] == before["fds"] and after["python_threads"] == before["python_threads"]


@pytest.mark.slow
def test_short_soak_keeps_memory_fds_and_threads_flat(tmp_path):
    report = soak.run_soak(frames=300, window=100, warmup=100, reload_every=50,
                           json_out=tmp_path / "soak.json", progress=None)
    assert report["complete"] and report["frames"] == 300 and len(report["windows"]) == 3
    assert sum(report["status_counts"].values()) == 300 and "map_empty" not in report["status_counts"]
    assert report["keyframes"] == 8
    assert report["rss_growth_percent"] < 5.0, report["windows"]
    assert report["changes_after_warmup"] == {"fds": 0, "os_threads": 0, "python_threads": 0}
    assert report["start"]["fds"] == report["end"]["fds"]  # six map re-opens left nothing open
    for window in report["windows"]:
        assert math.isfinite(window["p50_ms"]) and 0 < window["p50_ms"] <= window["p99_ms"]
    written = soak.json.loads((tmp_path / "soak.json").read_text())
    assert written["complete"] and written["frames"] == 300
