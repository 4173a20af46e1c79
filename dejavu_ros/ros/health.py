"""What /diagnostics says about the node: OK / WARN / ERROR from its counters. Pure Python (no rclpy)."""
from __future__ import annotations

from dataclasses import dataclass

from ..output.messages import ERROR, OK, WARN, DiagnosticReport
from .worker import WorkerStats


@dataclass
class NodeState:
    """What the node knows besides the worker's counters."""

    name: str
    map_mode: str  # "localize" or "map"
    mode: str  # "continuous" or "on_demand"
    map_size: int
    device: str
    fingerprint: str
    latency_warn_s: float
    seconds_since_image: float | None  # None: no image yet
    image_timeout_s: float  # WARN when no image arrived for this long
    last_status: str = ""  # status of the last result ("relocalized", ...)
    last_error: str = ""  # message of the last failed frame, cleared by the next good one
    relocalized: int = 0  # frames relocalized so far
    keyframes_added: int = 0  # mapping mode
    trust_mismatch: str = ""  # why the trust calibration does not fit the loaded model (engine.trust_mismatch)
    trust_fitted_on: str = ""  # the DVF fingerprint the trust calibration was fitted on ("" = not recorded)


def assess(stats: WorkerStats, state: NodeState) -> DiagnosticReport:
    """The single DiagnosticStatus the node publishes; the worst problem decides level and message."""
    problems: list[tuple[int, str]] = []
    if state.last_error:
        problems.append((ERROR, f"processing failed: {state.last_error}"))
    if state.map_mode == "localize" and state.map_size == 0:
        problems.append((ERROR, "the map has no keyframes"))
    if state.seconds_since_image is None:
        problems.append((WARN, "no image received yet"))
    elif state.seconds_since_image > state.image_timeout_s:
        problems.append((WARN, f"no image for {state.seconds_since_image:.1f} s"))
    if state.trust_mismatch and state.map_mode == "localize":
        problems.append((WARN, state.trust_mismatch))
    if stats.mean_latency_s is not None and stats.mean_latency_s > state.latency_warn_s > 0:
        problems.append((WARN, f"latency {stats.mean_latency_s * 1e3:.0f} ms above "
                               f"{state.latency_warn_s * 1e3:.0f} ms"))
    if problems:
        level = max(p[0] for p in problems)
        message = "; ".join(text for lvl, text in problems if lvl == level)
    else:
        level = OK
        verb = "mapping" if state.map_mode == "map" else "relocalizing"
        on_demand = state.mode == "on_demand"
        message = "waiting for requests" if on_demand else f"{verb} at {stats.rate_hz:.1f} Hz"

    values = {
        "map mode": state.map_mode,
        "mode": state.mode,
        "map size (keyframes)": state.map_size,
        "device": state.device,
        "model fingerprint": state.fingerprint,
        "trust calibration fitted on": state.trust_fitted_on or "not recorded",
        "rate (Hz)": stats.rate_hz,
        "latency last (ms)": _ms(stats.last_latency_s),
        "latency mean (ms)": _ms(stats.mean_latency_s),
        "latency max (ms)": _ms(stats.max_latency_s),
        "frames received": stats.received,
        "frames processed": stats.processed,
        "frames dropped (busy)": stats.dropped,
        "frames skipped (max_rate / on demand)": stats.skipped,
        "frames failed": stats.errors,
        "last status": state.last_status or "-",
    }
    if state.map_mode == "map":
        values["keyframes added"] = state.keyframes_added
    else:
        values["frames relocalized"] = state.relocalized
        values["accept rate (%)"] = (100.0 * state.relocalized / stats.processed) if stats.processed else 0.0
    return DiagnosticReport(name=state.name, level=level, message=message, hardware_id=state.device,
                            values=values)


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.1f}"
