"""The relocalizer node with the real engine and the shipped model, over real ROS topics (needs rclpy).

A map of two RobotCar keyframes (the day anchor at x = 0, another place at x = 100) is built
with the engine, then the node opens it read-only like a robot would. The soak floods the node
with camera-rate frames it cannot keep up with and checks that it degrades by dropping frames,
not by queueing them or growing.
"""
from __future__ import annotations

import os
import time

import cv2
import numpy as np
import pytest

from ros_harness import harness, ns, robotcar, robotcar_map, ros, wait_for  # noqa: F401 (fixtures)

SOAK_S = float(os.environ.get("DEJAVU_NODE_SOAK_S", "60"))
FLOOD_HZ = 30.0


def real_node(harness, map_path: str, **overrides):
    from dejavu_ros.ros.relocalizer_node import default_engine

    params = {"node.map_path": map_path, "features.device": "cpu", "node.diagnostics_period_s": 0.5,
              **overrides}
    return harness(params, engine_factory=default_engine)


def diagnostic_values(h) -> dict[str, str]:
    status = [s for d in h.received["diag"] for s in d.status if s.name.startswith("relocalizer")][-1]
    return {kv.key: kv.value for kv in status.values}


@pytest.mark.ros
def test_the_real_engine_answers_day_and_night_frames_over_ros(harness, robotcar_map):
    from dejavu_ros.output.messages import cloud_to_array

    map_path, fingerprint = robotcar_map
    h = real_node(harness, map_path)
    assert h.engine.map_size == 2 and h.engine.map.read_only  # localize mode never writes the map
    for k, name in enumerate(("anchor_1", "positive_0")):
        stamp = 1_700_000_000_000_000_000 + k * 100_000_000
        assert h.publish_until(stamp, rgb=robotcar(name), timeout_s=60.0), f"no candidates for {name}"
        candidates = next(m for m in h.received["candidates"] if ns(m.header.stamp) == stamp)
        assert candidates.header.frame_id == "map" and len(candidates.poses) == 2
        assert wait_for(lambda: any(ns(m.header.stamp) == stamp for m in h.received["scores"]))
        scores = cloud_to_array(next(m for m in h.received["scores"] if ns(m.header.stamp) == stamp))
        assert sorted(scores["keyframe_id"]) == [1.0, 2.0] and scores["cx_score"][0] >= scores["cx_score"][1]
        assert candidates.poses[0].position.x == (0.0 if scores["keyframe_id"][0] == 1 else 100.0)  # same order
    # the day frame finds its place; how the night frame ranks is the engine's (strict xfail in test_engine.py)
    day = next(m for m in h.received["candidates"] if ns(m.header.stamp) == 1_700_000_000_000_000_000)
    assert day.poses[0].position.x == pytest.approx(0.0)
    assert wait_for(lambda: h.received["diag"], 5.0)
    values = diagnostic_values(h)
    assert values["model fingerprint"] == fingerprint and values["map size (keyframes)"] == "2"
    assert values["device"] == "cpu"


@pytest.mark.ros
@pytest.mark.slow
def test_a_camera_rate_flood_stays_bounded_for_a_minute(harness, robotcar_map):
    """30 Hz of 640×480 frames for DEJAVU_NODE_SOAK_S seconds (default 60) into a slower engine."""
    map_path, _ = robotcar_map
    h = real_node(harness, map_path)
    h.keep_messages = False
    base = cv2.resize(robotcar("anchor_1"), (640, 480), interpolation=cv2.INTER_AREA)
    frames = [np.roll(base, 3 * k, axis=1) for k in range(8)]  # a camera that pans a little
    assert h.publish_until(1_000_000_000, rgb=frames[0], timeout_s=60.0)

    sent: dict[int, float] = {}
    rss: list[tuple[float, float]] = []  # (seconds into the flood, MiB)
    start = time.monotonic()
    next_sample, k = start, 0
    while (now := time.monotonic()) - start < SOAK_S:
        stamp = 2_000_000_000 + k * 33_333_333
        h.image_pub.publish(h.image(stamp, rgb=frames[k % len(frames)]))
        sent[stamp] = time.monotonic()
        k += 1
        if now >= next_sample:
            rss.append((now - start, resident_mib()))
            next_sample += 1.0
        time.sleep(max(0.0, start + k / FLOOD_HZ - time.monotonic()))
    assert wait_for(lambda: not h.node.worker.stats().busy and not h.node.worker.stats().pending, 30.0)
    time.sleep(1.5)  # the last results and a diagnostics message arrive

    latencies = np.array([(t, t - sent[stamp]) for stamp, t in h.arrivals["candidates"] if stamp in sent])
    stats = h.node.worker.stats()
    third = SOAK_S / 3
    early = latencies[latencies[:, 0] - start < third, 1]
    late = latencies[latencies[:, 0] - start > 2 * third, 1]
    steady = [m for t, m in rss if t >= max(10.0, 0.2 * SOAK_S)]
    growth = (np.median(steady[-10:]) - np.median(steady[:10])) / np.median(steady[:10])
    values = diagnostic_values(h)
    print(f"\nnode flood: {k} frames at {FLOOD_HZ:.0f} Hz in {SOAK_S:.0f} s; received {stats.received}, "
          f"processed {stats.processed}, dropped {stats.dropped}, errors {stats.errors}; latency p50/p99/max "
          f"{np.percentile(latencies[:, 1], 50) * 1e3:.0f}/{np.percentile(latencies[:, 1], 99) * 1e3:.0f}/"
          f"{latencies[:, 1].max() * 1e3:.0f} ms (first third p99 {np.percentile(early, 99) * 1e3:.0f}, last third "
          f"{np.percentile(late, 99) * 1e3:.0f}); RSS {np.median(steady[:10]):.0f} → {np.median(steady[-10:]):.0f} MiB "
          f"({100 * growth:+.1f} %); diagnostics dropped {values['frames dropped (busy)']}")

    assert stats.errors == 0 and stats.processed >= 0.5 * SOAK_S / 10  # it kept working
    assert stats.processed < 0.5 * stats.received  # it was much slower than the camera ...
    assert stats.received == stats.processed + stats.dropped + stats.skipped  # ... and every frame is accounted for
    assert int(values["frames dropped (busy)"]) == stats.dropped > 0  # the drops are visible on /diagnostics
    assert stats.received >= 0.9 * k  # the flood reached the node (loopback, same process)
    assert len(latencies) >= 0.9 * stats.processed  # every processed frame was answered
    assert np.percentile(late, 99) < 1.5 * np.percentile(early, 99) + 0.25  # no queue builds up
    assert latencies[:, 1].max() < 3.0 * np.percentile(latencies[:, 1], 50) + 1.0
    assert growth < 0.05


def resident_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
