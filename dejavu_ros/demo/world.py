"""A synthetic street, drawn procedurally, seen by day and by night.

A side-looking camera drives along a row of buildings (a facade "panorama" in metres along the
route). Each building has its own height, colour, window grid and door; trees and lamp posts stand
in front. By night the sky and walls go dark, a random subset of windows is lit, lamps glow and
the sensor adds noise — intensity corners move from the day's window edges to the night's lights,
which is exactly the situation the product is for. Everything is generated from a seed: no data
is downloaded or shipped.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

PX_PER_M = 12.0  # facade pixels per metre along the route
HEIGHT = 240  # image rows
FRAME_WIDTH = 320  # image columns (the camera sees 320 / PX_PER_M ≈ 27 m of facade)


@dataclass
class Street:
    """The facade albedo plus the masks the night rendering needs."""

    albedo: np.ndarray  # H×W×3 float32 in [0, 1], daylight colours
    windows: np.ndarray  # H×W int32 window ids (0 = not a window)
    lamps: list[tuple[int, int]]  # (column, row) of lamp heads
    sky: np.ndarray  # H×W bool

    @property
    def length_m(self) -> float:
        return self.albedo.shape[1] / PX_PER_M


def make_street(length_m: float = 160.0, seed: int = 7) -> Street:
    rng = np.random.default_rng(seed)
    width = int((length_m + FRAME_WIDTH / PX_PER_M) * PX_PER_M)
    img = np.zeros((HEIGHT, width, 3), np.float32)
    rows = np.linspace(0, 1, HEIGHT, dtype=np.float32)[:, None]
    img[:] = (np.array([0.55, 0.72, 0.95], np.float32) * (1 - 0.3 * rows))[:, None, :]  # sky gradient
    sky = np.ones((HEIGHT, width), bool)
    windows = np.zeros((HEIGHT, width), np.int32)
    ground = int(HEIGHT * 0.82)
    x, window_id = 0, 1
    while x < width:
        bw = int(rng.uniform(6, 16) * PX_PER_M)
        top = int(rng.uniform(0.08, 0.45) * HEIGHT)
        colour = rng.uniform(0.35, 0.85, 3).astype(np.float32)
        img[top:ground, x:x + bw] = colour
        sky[top:ground, x:x + bw] = False
        cv2.rectangle(img, (x, top), (x + bw - 1, top + 4), tuple(float(c) * 0.6 for c in colour), -1)
        ww, wh = int(rng.integers(8, 16)), int(rng.integers(10, 20))
        gx, gy = ww + int(rng.integers(6, 14)), wh + int(rng.integers(8, 16))
        frame_colour = tuple(float(v) for v in rng.uniform(0.1, 0.95, 3))
        for wy in range(top + 12, ground - wh - 18, gy):
            for wx in range(x + 6, x + bw - ww - 4, gx):
                if rng.random() < 0.12:
                    continue  # bricked-up window: breaks the regular grid
                cv2.rectangle(img, (wx - 1, wy - 1), (wx + ww, wy + wh), frame_colour, -1)
                cv2.rectangle(img, (wx, wy), (wx + ww - 1, wy + wh - 1), (0.18, 0.22, 0.28), -1)
                windows[wy:wy + wh, wx:wx + ww] = window_id
                window_id += 1
        door = x + int(rng.uniform(0.2, 0.7) * bw)
        cv2.rectangle(img, (door, ground - 30), (door + 16, ground), (0.25, 0.15, 0.1), -1)
        x += bw + int(rng.uniform(0, 3) * PX_PER_M)
    img[ground:] = np.array([0.32, 0.32, 0.34], np.float32)  # road
    sky[ground:] = False
    for lx in range(int(rng.uniform(2, 6) * PX_PER_M), width, int(rng.uniform(14, 20) * PX_PER_M)):
        cv2.line(img, (lx, ground), (lx, ground - 95), (0.15, 0.15, 0.15), 3)
        cv2.line(img, (lx, ground - 95), (lx + 14, ground - 95), (0.15, 0.15, 0.15), 3)
    lamps = [(lx + 14, ground - 92) for lx in range(int(rng.uniform(2, 6) * PX_PER_M), width,
                                                         int(rng.uniform(14, 20) * PX_PER_M))]
    for _ in range(int(length_m / 9)):  # trees
        tx, ty = int(rng.uniform(0, width)), int(rng.uniform(ground - 60, ground - 30))
        cv2.ellipse(img, (tx, ty), (int(rng.integers(14, 26)), int(rng.integers(16, 30))), 0, 0, 360,
                    tuple(float(v) for v in rng.uniform([0.1, 0.35, 0.1], [0.25, 0.55, 0.2])), -1)
        cv2.line(img, (tx, ty), (tx, ground), (0.3, 0.2, 0.1), 4)
    noise = rng.normal(0, 0.025, img.shape[:2]).astype(np.float32)  # wall texture
    img = np.clip(img + noise[:, :, None] * (~sky)[:, :, None], 0, 1)
    return Street(albedo=img, windows=windows, lamps=lamps, sky=sky)


def render(street: Street, position_m: float, condition: str, rng: np.random.Generator) -> np.ndarray:
    """RGB uint8 view of the facade centred ``position_m`` metres along the route."""
    x0 = int(round(position_m * PX_PER_M))
    x0 = int(np.clip(x0, 0, street.albedo.shape[1] - FRAME_WIDTH))
    crop = street.albedo[:, x0:x0 + FRAME_WIDTH].copy()
    if condition == "day":
        out = crop * rng.uniform(0.9, 1.1)
    elif condition == "night":
        out = _night(street, crop, x0, rng)
    elif condition == "fog":
        out = 0.45 * crop + 0.55 * 0.75
    else:
        raise ValueError(f"unknown condition {condition!r} (day, night, fog)")
    # a different traversal never sees the street from exactly the same spot
    shift = rng.uniform(-0.02, 0.02)
    m = cv2.getRotationMatrix2D((FRAME_WIDTH / 2, HEIGHT / 2), rng.uniform(-1.0, 1.0), 1.0 + shift)
    out = cv2.warpAffine(np.clip(out, 0, 1).astype(np.float32), m, (FRAME_WIDTH, HEIGHT),
                         borderMode=cv2.BORDER_REFLECT)
    return (np.clip(out, 0, 1) * 255).astype(np.uint8)


def _night(street: Street, crop: np.ndarray, x0: int, rng: np.random.Generator) -> np.ndarray:
    win = street.windows[:, x0:x0 + FRAME_WIDTH]
    sky = street.sky[:, x0:x0 + FRAME_WIDTH]
    out = crop * np.array([0.10, 0.11, 0.16], np.float32)  # moonlight, blue cast
    out[sky] = np.array([0.02, 0.03, 0.07], np.float32)
    ids = np.unique(win[win > 0])
    lit = ids[(ids.astype(np.int64) * 2654435761 % 97) < 40]  # the same windows are lit every night
    glow = np.isin(win, lit)
    out[glow] = np.array([1.0, 0.85, 0.45], np.float32)
    light = np.zeros(crop.shape[:2], np.float32)
    for lx, ly in street.lamps:
        if x0 - 40 <= lx < x0 + FRAME_WIDTH + 40:
            cv2.circle(light, (lx - x0, ly), 40, 1.0, -1)
    light = cv2.GaussianBlur(light, (0, 0), 18)
    out = out + light[:, :, None] * np.array([0.9, 0.7, 0.35], np.float32) * (0.4 + crop)
    out = out + rng.normal(0, 0.02, out.shape).astype(np.float32)  # sensor noise
    return np.clip(out, 0, 1) ** 0.9
