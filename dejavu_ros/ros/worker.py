"""A one-frame slot and the thread that drains it, so subscription callbacks never wait on the engine.

Callbacks :meth:`LatestFrameWorker.submit` a frame and return at once. The worker thread always
takes the newest frame: one that is replaced before the worker got to it is counted as *dropped*
(the engine could not keep up) or *skipped* (the node is rate-limited by ``max_rate`` or waits for
``~/relocalize_once`` in on-demand mode). Pure Python: no rclpy here, so it is tested without ROS.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class WorkerStats:
    """A consistent snapshot of the worker's counters (latencies in seconds)."""

    received: int
    processed: int
    dropped: int
    skipped: int
    errors: int
    busy: bool  # a frame is being processed
    pending: bool  # a frame waits in the slot
    rate_hz: float  # frames processed per second over the last ``rate_window_s``
    last_latency_s: float | None  # submit -> processing finished, last frame
    mean_latency_s: float | None  # ... mean over the recent frames
    max_latency_s: float | None  # ... worst of the recent frames


@dataclass
class OnceReply:
    """What :meth:`LatestFrameWorker.request_once` hands back."""

    done: bool
    result: Any = None
    error: BaseException | None = None
    message: str = ""


class _Request:
    def __init__(self, at: float) -> None:
        self.at = at
        self.event = threading.Event()
        self.reply = OnceReply(done=False, message="timed out waiting for a frame")


class LatestFrameWorker:
    """Runs ``process(frame)`` on a background thread, always on the newest submitted frame."""

    def __init__(self, process: Callable[[Any], Any], *, max_rate: float = 0.0, on_demand: bool = False,
                 on_error: Callable[[BaseException], None] | None = None,
                 clock: Callable[[], float] = time.monotonic, rate_window_s: float = 5.0,
                 latency_window: int = 50, name: str = "dejavu-worker"):
        self._process = process
        self._on_error = on_error
        self._on_demand = on_demand
        self._clock = clock
        self._rate_window_s = float(rate_window_s)
        self._cond = threading.Condition()
        self._slot: tuple[Any, float] | None = None
        self._requests: list[_Request] = []
        self._min_period = 0.0
        self.set_max_rate(max_rate)
        self._last_start: float | None = None
        self._throttling = False
        self._busy = False
        self._stopping = False
        self._started_at = clock()
        self._counts = {"received": 0, "processed": 0, "dropped": 0, "skipped": 0, "errors": 0}
        self._latencies: deque[float] = deque(maxlen=latency_window)
        self._completions: deque[float] = deque()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    # --- producer side (subscription callbacks, services) ----------------------------------

    def start(self) -> "LatestFrameWorker":
        self._started_at = self._clock()
        self._thread.start()
        return self

    def submit(self, frame: Any) -> bool:
        """Put ``frame`` in the slot; return False when it replaced a frame that was never processed."""
        with self._cond:
            self._counts["received"] += 1
            replaced = self._slot is not None
            if replaced:
                by_design = self._on_demand or self._throttling
                self._counts["skipped" if by_design else "dropped"] += 1
            self._slot = (frame, self._clock())
            self._cond.notify_all()
        return not replaced

    def request_once(self, timeout_s: float) -> OnceReply:
        """Process the newest frame now (ignoring max_rate and on-demand idling) and wait for it.

        Waits for a frame to arrive when none is held; blocks the caller up to ``timeout_s``.
        """
        with self._cond:
            request = _Request(self._clock())
            if self._stopping:
                return OnceReply(done=False, message="the node is shutting down")
            self._requests.append(request)
            self._cond.notify_all()
        if not request.event.wait(timeout_s):
            with self._cond:
                if request in self._requests:
                    self._requests.remove(request)
        return request.reply

    def set_max_rate(self, hz: float) -> None:
        with self._cond:
            self._min_period = 1.0 / hz if hz > 0 else 0.0
            self._cond.notify_all()

    def stop(self, timeout_s: float = 10.0) -> bool:
        """Finish the frame in progress, then end the thread; True when it ended in time."""
        with self._cond:
            self._stopping = True
            for request in self._requests:
                request.reply = OnceReply(done=False, message="the node is shutting down")
                request.event.set()
            self._requests.clear()
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def stats(self) -> WorkerStats:
        with self._cond:
            now = self._clock()
            self._forget_old_completions(now)
            span = min(self._rate_window_s, max(now - self._started_at, 1e-9))
            lat = list(self._latencies)
            return WorkerStats(
                received=self._counts["received"], processed=self._counts["processed"],
                dropped=self._counts["dropped"], skipped=self._counts["skipped"],
                errors=self._counts["errors"],
                busy=self._busy, pending=self._slot is not None, rate_hz=len(self._completions) / span,
                last_latency_s=lat[-1] if lat else None,
                mean_latency_s=sum(lat) / len(lat) if lat else None,
                max_latency_s=max(lat) if lat else None)

    # --- worker thread ----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                taken = self._take_next()
                if taken is None:
                    return
                (frame, submitted), requests = taken
            start = self._clock()
            reply = OnceReply(done=True)
            try:
                reply.result = self._process(frame)
            except Exception as exc:  # noqa: BLE001 - one bad frame must not end the worker
                reply = OnceReply(done=False, error=exc, message=str(exc) or type(exc).__name__)
                if self._on_error is not None:
                    self._on_error(exc)
            end = self._clock()
            # a held frame processed on request counts from the request, not from its arrival
            began = max([submitted] + [r.at for r in requests])
            with self._cond:
                self._busy = False
                self._counts["processed" if reply.error is None else "errors"] += 1
                self._latencies.append(end - began)
                self._completions.append(end)
                self._last_start = start
            for request in requests:
                request.reply = reply
                request.event.set()

    def _take_next(self) -> tuple[tuple[Any, float], list[_Request]] | None:
        """Wait (holding the condition) until a frame is due; None when stopping."""
        while not self._stopping:
            wanted = bool(self._requests) or not self._on_demand
            if self._slot is None or not wanted:
                self._cond.wait()
                continue
            if not self._requests and self._min_period > 0 and self._last_start is not None:
                wait_s = self._last_start + self._min_period - self._clock()
                if wait_s > 0:
                    self._throttling = True
                    self._cond.wait(wait_s)
                    continue
            taken, self._slot = self._slot, None
            requests, self._requests = self._requests, []
            self._busy = True
            self._throttling = False
            return taken, requests
        return None

    def _forget_old_completions(self, now: float) -> None:
        while self._completions and self._completions[0] < now - self._rate_window_s:
            self._completions.popleft()
