"""Route localization: many frames agree where one is ambiguous (SeqSLAM search, odometry filter).

Per frame every keyframe gets a score: the global-descriptor cosine (cheap over the whole map),
z-normalised over the map, plus the z-normalised coarse CX of the pre-ranked keyframes and the
z-normalised CX of the shortlisted ones (keyframes a term did not score take its lowest value).
Raw scores are not summed over frames: each frame's vector is centred and scaled first, so a frame
with generally high similarities does not outvote the others; then each keyframe's own mean over the
recent frames is subtracted (:class:`KeyframeBaseline`), so a keyframe that resembles every query of
another condition (a hub) does not outvote the place the robot is at.

Without odometry (:class:`SequenceSearch`) the last ``length`` frames are matched against straight
lines through each traversal's keyframe sequence (a map may hold several drives; each is searched on
its own), one line per velocity in keyframes per frame; a line's score is the mean normalised score
along it. With odometry (:class:`OdometryFilter`) a discrete Bayes filter over (keyframe, direction)
moves its belief along the traversals by the distance travelled — only relative motion is used, so
odometry lives in any frame — and weighs it with the normalised scores; a confidence collapse
(kidnapping) resets it. Either gives a :class:`RouteHypothesis`: a keyframe and how strongly the
recent past supports its place against every other place.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from functools import cached_property

import numpy as np

#: weight of the shortlist's CX in the per-frame score (measured on the Nordland route: README)
CX_WEIGHT = 1.0
#: velocities searched without odometry, keyframes per frame, in the map's driving direction. Adding
#: 0 and negative ones (a stop, a reverse drive) let lines through locally similar keyframes win:
#: Nordland top-1 96.1 % → 92.5 %; driving a map backwards needs odometry (the filter tracks both ways)
VELOCITIES = np.linspace(0.5, 2.0, 7)


def zscore(x: np.ndarray) -> np.ndarray:
    """Centred and scaled to unit spread (all zeros when ``x`` is constant): scores of different kinds
    on one scale before they are summed."""
    x = np.asarray(x, np.float64)
    sd = float(x.std())
    return (x - x.mean()) / sd if sd > 1e-12 else np.zeros_like(x)


def frame_scores(cosine: np.ndarray, *partial: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """One frame's normalised score of every keyframe (see the module docstring).

    ``cosine``: the global descriptor's cosine to every keyframe; each ``(rows, values)`` of
    ``partial`` a score of some keyframes only (the coarse pre-rank's CX, the shortlist's CX), the
    others taking its lowest value. Each term is z-normalised over the map, then they are summed."""
    cos = np.asarray(cosine, np.float64)
    total = zscore(cos)
    for rows, values in partial:
        values = np.asarray(values, np.float64)
        filled = np.full(cos.shape, float(np.min(values)) if len(values) else 0.0)
        filled[np.asarray(rows, np.int64)] = values
        total = total + CX_WEIGHT * zscore(filled)
    return total


class KeyframeBaseline:
    """Each keyframe's score relative to its own mean over the last ``frames`` frames.

    At night or in fog a few day keyframes resemble every query (hubs): they top each frame's
    normalised scores, and a filter or a sequence search adds that bias up into a confident, wrong
    track (demo street at night with odometry: 85 m off at a support of 0.99). Over recent frames the
    robot was mostly somewhere else, so a keyframe's mean there is what it scores against places it
    does not show; subtracting it leaves what is particular to this frame — the per-keyframe
    normalisation SeqSLAM's contrast enhancement aims at. With odometry a frame joins the history only
    once the robot moved ``min_step_m`` since the last one: a stopped robot would otherwise fill the
    history with its own place and cancel it (without odometry every frame joins, so a robot stopped
    for about ``frames`` frames does cancel it). ``frames`` = 0 passes scores through."""

    #: frames held before the baseline is used (fewer: scores pass through unchanged)
    MIN_FRAMES = 3
    #: with odometry, the least motion (m) that counts even where ``min_step_m`` is 0
    MIN_MOTION_M = 0.01

    def __init__(self, frames: int) -> None:
        self.frames = int(frames)
        # float32 frames and a float64 running sum: 4 bytes per keyframe and frame held, plus 8 (a
        # 1M-keyframe map at 50 frames: 208 MB), O(keyframes) work per frame
        self.history: deque[np.ndarray] = deque()
        self._sum: np.ndarray | None = None
        self._last_position: np.ndarray | None = None

    def reset(self) -> None:
        self.history.clear()
        self._sum, self._last_position = None, None

    def normalise(self, scores: np.ndarray, position: np.ndarray | None = None, min_step_m: float = 0.0) -> np.ndarray:
        """``scores`` of every keyframe this frame, less each keyframe's mean over the held frames."""
        scores = np.asarray(scores, np.float64)
        if self.frames <= 0:
            return scores
        if self._sum is not None and self._sum.shape != scores.shape:  # the map grew or changed
            self.reset()
        moved = (position is None or self._last_position is None
                 or float(np.linalg.norm(np.asarray(position, np.float64) - self._last_position))
                 >= max(min_step_m, self.MIN_MOTION_M))
        if moved:
            frame = scores.astype(np.float32)
            if self._sum is None:
                self._sum = np.zeros(scores.shape, np.float64)
            if len(self.history) == self.frames:
                self._sum -= self.history.popleft()
            self.history.append(frame)
            self._sum += frame
            if position is not None:
                self._last_position = np.asarray(position, np.float64).copy()
        if len(self.history) < self.MIN_FRAMES:
            return scores
        return scores - self._sum / len(self.history)


@dataclass
class Traversals:
    """The map's drives: for each, its keyframe rows in driving order and their arc length (m)."""

    rows: list[np.ndarray]
    arc: list[np.ndarray]
    which: np.ndarray  # (N,) traversal index of every row
    index: np.ndarray  # (N,) position of every row inside its traversal

    @cached_property
    def median_step_m(self) -> float:
        """The median distance between consecutive keyframes of a drive (0 without any)."""
        steps = np.concatenate([np.diff(a) for a in self.arc] + [np.zeros(0)])
        steps = steps[steps > 0]
        return float(np.median(steps)) if len(steps) else 0.0

    @classmethod
    def from_map(cls, keys: list, positions: np.ndarray) -> "Traversals":
        """``keys`` (per row, in id order) name each keyframe's traversal."""
        n = len(keys)
        which, index = np.zeros(n, np.int64), np.zeros(n, np.int64)
        rows, arc = [], []
        for t, key in enumerate(dict.fromkeys(keys)):
            members = np.array([i for i in range(n) if keys[i] == key], np.int64)
            steps = np.linalg.norm(np.diff(positions[members], axis=0), axis=1)
            rows.append(members)
            arc.append(np.concatenate([[0.0], np.cumsum(steps)]))
            which[members], index[members] = t, np.arange(len(members))
        return cls(rows, arc, which, index)


@dataclass
class RouteHypothesis:
    row: int  # the keyframe row the route says the camera is at
    support: float  # in [0, 1]: how much of the evidence backs this place against every other place
    frames: int  # frames of history behind it
    mode: str  # "sequence" or "odometry"


def _place_support(values: np.ndarray, best: int, near: np.ndarray, temperature: float = 1.0) -> float:
    """Softmax mass of the best place against all others (``near``: rows of the best's place)."""
    finite = np.where(np.isfinite(values), values, -np.inf)
    if not np.isfinite(finite[best]):  # no velocity line fits the map (e.g. two keyframes)
        return 0.0
    w = np.exp((finite - finite[best]) / temperature)
    total = float(w.sum())
    return float(w[near].sum() / total) if total > 0 else 0.0


class SequenceSearch:
    """SeqSLAM-style velocity search over the last ``length`` frames, per traversal."""

    def __init__(self, length: int) -> None:
        self.length = int(length)
        self.history: deque[np.ndarray] = deque(maxlen=max(self.length, 1))

    def reset(self) -> None:
        self.history.clear()

    def update(self, scores: np.ndarray, traversals: Traversals, near_of) -> RouteHypothesis | None:
        """Add this frame; None until two frames are held. ``near_of(row)`` → bool rows of that place."""
        self.history.append(np.asarray(scores, np.float64))
        frames = len(self.history)
        if frames < 2:
            return None
        hist = np.stack(self.history)  # (L, N), oldest first
        lags = np.arange(frames - 1, -1, -1)  # frames before now
        best = np.full(hist.shape[1], -np.inf)
        for rows in traversals.rows:
            m = len(rows)
            pos = np.arange(m)[:, None, None] - VELOCITIES[None, :, None] * lags[None, None, :]  # (m, V, L)
            idx = np.rint(pos).astype(np.int64)
            inside = (idx >= 0) & (idx < m)
            vals = hist[np.arange(frames)[None, None, :], rows[np.clip(idx, 0, m - 1)]]
            vals = np.where(inside, vals, np.nan)
            count = inside.sum(axis=2)
            mean = np.where(count >= max(2, frames // 2), np.nansum(vals, axis=2) / np.maximum(count, 1), -np.inf)
            best[rows] = mean.max(axis=1)
        row = int(np.argmax(best))
        # line scores are means of z-scores: their spread shrinks with the square root of the frames
        support = _place_support(best * math.sqrt(frames), row, near_of(row))
        return RouteHypothesis(row, support, frames, "sequence")


class OdometryFilter:
    """Discrete Bayes filter over (keyframe row, direction of travel along its traversal)."""

    #: probability per frame that the robot was moved (kidnapped) anywhere on the map
    KIDNAP = 1e-3
    #: odometry error: σ of the travelled distance (m) = RELATIVE · d + ABSOLUTE
    RELATIVE, ABSOLUTE = 0.2, 1.0
    #: the belief is reset when the observation is this much less likely than under a fresh start...
    COLLAPSE_LOG = 6.0
    #: ...for this many frames in a row
    COLLAPSE_FRAMES = 3

    def __init__(self, length: int) -> None:
        self.length = int(length)
        self.belief: np.ndarray | None = None  # (2, N): direction +1, −1
        self.frames = 0
        self._last_position: np.ndarray | None = None
        self._surprised = 0

    def reset(self) -> None:
        self.belief, self.frames, self._last_position, self._surprised = None, 0, None, 0

    def update(self, scores: np.ndarray, odom_position: np.ndarray, traversals: Traversals,
               near_of) -> RouteHypothesis:
        scores = np.asarray(scores, np.float64)
        n = len(scores)
        likelihood = np.exp(scores - scores.max())
        moved = 0.0 if self._last_position is None else float(np.linalg.norm(odom_position - self._last_position))
        self._last_position = np.asarray(odom_position, np.float64).copy()
        if self.belief is None or self.belief.shape[1] != n:
            prior = np.full((2, n), 1.0 / (2 * n))
        else:
            prior = self._predict(self.belief, moved, traversals)
        fresh = float(likelihood.mean())  # evidence under a uniform belief
        evidence = float((prior * likelihood[None]).sum())
        if self.belief is not None and math.log(max(fresh, 1e-300)) - math.log(max(evidence, 1e-300)) > self.COLLAPSE_LOG:
            self._surprised += 1
        else:
            self._surprised = 0
        if self._surprised >= self.COLLAPSE_FRAMES:  # the robot is not where the filter believes: kidnapped
            prior, self.frames, self._surprised = np.full((2, n), 1.0 / (2 * n)), 0, 0
        post = prior * likelihood[None]
        self.belief = post / post.sum()
        self.frames = min(self.frames + 1, self.length)
        marginal = self.belief.sum(axis=0)
        row = int(np.argmax(marginal))
        support = float(marginal[near_of(row)].sum())
        return RouteHypothesis(row, support, self.frames, "odometry")

    #: keyframes on each side of a moved mass it may land on (bounds the work per frame)
    MAX_SPREAD = 40

    def _predict(self, belief: np.ndarray, moved: float, traversals: Traversals) -> np.ndarray:
        sigma = self.RELATIVE * moved + self.ABSOLUTE
        out = np.zeros_like(belief)
        for rows, arc in zip(traversals.rows, traversals.arc):
            m = len(rows)
            if m == 1:
                out[:, rows] = belief[:, rows]
                continue
            spacing = max(float(np.median(np.diff(arc))), 1e-3)
            reach = min(self.MAX_SPREAD, int(math.ceil(3.0 * sigma / spacing)) + 1)
            offsets = np.arange(-reach, reach + 1)
            for d, sign in ((0, 1.0), (1, -1.0)):
                # the mass at arc length a moves to a ± moved, spread by σ over the nearby keyframes
                target = arc + sign * moved
                centre = np.clip(np.searchsorted(arc, target), 0, m - 1)
                idx = np.clip(centre[:, None] + offsets[None], 0, m - 1)  # (m, 2·reach + 1)
                weight = np.exp(-0.5 * ((arc[idx] - target[:, None]) / sigma) ** 2)
                weight /= np.maximum(weight.sum(axis=1, keepdims=True), 1e-300)
                moved_mass = np.zeros(m)
                np.add.at(moved_mass, idx.ravel(), (belief[d, rows][:, None] * weight).ravel())
                out[d, rows] = moved_mass
        out = (1.0 - self.KIDNAP) * out + self.KIDNAP / out.size
        return out / out.sum()
