"""Relocalization problems with ground truth, built from public data sets: a map and its queries.

Each :class:`Scenario` says which frames become keyframes (with a camera pose in the map frame)
and which frames are queries (with the true position), and how far from the truth a keyframe may
lie and still show the query's place. The trust calibration, the route benchmark and the tests
run the engine on them exactly as a user would (``build-map``, then ``relocalize``), without
bags. Images are loaded only when used.

Data sets without metric poses get positions that respect their place structure: a Nordland
place every 10 m along a line (the frames are roughly that far apart), GRIEF locations and
webcams 1 km apart, the VPR-Bench corridor 5 m per frame.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import cv2
import numpy as np

from ..datasets.manifest import load_rgb
from ..geometry import CameraIntrinsics

IDENTITY = np.array([0.0, 0.0, 0.0, 1.0])
#: metres between Nordland places, GRIEF locations / webcams, VPR-Bench corridor frames
NORDLAND_SPACING_M, DISTINCT_M, CORRIDOR_SPACING_M = 10.0, 1000.0, 5.0
TUM_CAMERA = CameraIntrinsics.from_fxfycxcy(535.4, 539.2, 320.1, 247.6, 640, 480, "camera")


@dataclass
class Frame:
    """One image of a scenario: where it was taken and how to load it."""

    load: Callable[[], np.ndarray]  # → H×W×3 uint8 RGB
    position: np.ndarray  # (3,) map frame, metres (the truth, for queries)
    name: str = ""
    orientation: np.ndarray = field(default_factory=lambda: IDENTITY.copy())
    camera: CameraIntrinsics | None = None
    stamp: float = 0.0
    traversal: int = 0  # map frames: the drive they belong to (their order in it is their list order)


@dataclass
class Scenario:
    name: str
    map_frames: list[Frame]
    queries: list[Frame]
    tolerance_m: float  # a keyframe this close to the query's true position shows its place
    note: str = ""

    def correct(self, keyframe_position: np.ndarray, query: Frame) -> bool:
        return float(np.linalg.norm(np.asarray(keyframe_position) - query.position)) <= self.tolerance_m


def _x(metres: float) -> np.ndarray:
    return np.array([float(metres), 0.0, 0.0])


def _file(path: Path, size: tuple[int, int] | None = None) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        rgb = load_rgb(str(path))
        return rgb if size is None else cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR)
    return load


# --- Nordland ---------------------------------------------------------------------------------

def nordland_frame(root: Path, season: str, place: int) -> Frame:
    """Place ``place`` (1-based, file number / 10), upsampled 64×32 → 256×128 as a user would feed it."""
    path = Path(root) / season / f"images-{place * 10:05d}.png"
    return Frame(_file(path, (256, 128)), _x(NORDLAND_SPACING_M * place), f"{season}/{place}",
                 stamp=float(place))


def nordland_route(root: Path, map_places: Iterable[int], query_places: Iterable[int],
                   name: str = "nordland", every: int = 1) -> Scenario:
    """Summer drive as the map, winter drive as queries; right within one place (±10 m)."""
    return Scenario(name, [nordland_frame(root, "summer", p) for p in map_places],
                    [nordland_frame(root, "winter", p) for p in list(query_places)[::every]],
                    tolerance_m=1.5 * NORDLAND_SPACING_M,
                    note="summer map, winter queries, 256x128, no intrinsics")


# --- GRIEF ------------------------------------------------------------------------------------

def grief_sessions(root: Path, map_sessions: Sequence[int] = (1, 5, 9)) -> Scenario:
    """Every location mapped in several sessions (a multi-traversal map); the other sessions query it."""
    maps, queries = [], []
    sets = sorted(p for p in Path(root).iterdir() if (p / "images").is_dir())
    for s_index, folder in enumerate(sets):
        for path in sorted((folder / "images").glob("*.jpg")):
            session, location = int(path.stem[:2]), int(path.stem[2:])
            where = _x(DISTINCT_M * (10 * s_index + location))
            frame = Frame(_file(path), where, f"{folder.name}/{path.stem}", stamp=float(session),
                          traversal=session)
            (maps if session in map_sessions else queries).append(frame)
    return Scenario("grief", maps, queries, tolerance_m=1.0,
                    note=f"sessions {list(map_sessions)} of every location mapped, the rest query; 1024x384")


# --- fixed webcams ----------------------------------------------------------------------------

def _tilde_scenes(root: Path) -> dict[str, list[tuple[Path, float]]]:
    scenes: dict[str, list[tuple[Path, float]]] = {}
    with (Path(root) / "manifest.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            path = Path(root) / row["file"]
            grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            scenes.setdefault(row["scene"], []).append((path, float(grey.mean())))
    return scenes


def webcams(tilde_root: Path | None, oxblue_root: Path | None, queries_per_camera: int = 12) -> Scenario:
    """One bright frame per fixed camera as the map; its darkest frames (night) as queries."""
    maps, queries = [], []
    cameras: dict[str, list[tuple[Path, float]]] = {}
    if tilde_root is not None:
        cameras.update(_tilde_scenes(tilde_root))
    if oxblue_root is not None:
        with (Path(oxblue_root) / "index.csv").open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        cameras["oxblue"] = [(Path(oxblue_root) / r["path"], float(r["mean_luma"])) for r in rows
                             if r["condition"] in ("day", "night")]
    for c_index, (camera, frames) in enumerate(sorted(cameras.items())):
        where = _x(DISTINCT_M * (c_index + 1))
        ordered = sorted(frames, key=lambda f: f[1])
        maps.append(Frame(_file(ordered[-1][0]), where, f"{camera}/{ordered[-1][0].stem}"))
        dark = ordered[: max(1, len(ordered) // 3)]
        picks = np.linspace(0, len(dark) - 1, min(queries_per_camera, len(dark))).round().astype(int)
        queries += [Frame(_file(dark[i][0]), where, f"{camera}/{dark[i][0].stem}") for i in sorted(set(picks))]
    return Scenario("webcams", maps, queries, tolerance_m=1.0,
                    note="brightest frame per camera mapped, darkest third queried")


# --- TUM: one indoor place, intrinsics ----------------------------------------------------------

def tum_room(root: Path, foreign: Sequence[Frame] = ()) -> Scenario:
    """17 frames of one office: every 4th mapped (one place), the rest query it (essential matrix path).

    ``foreign`` frames (other data sets) query the same map: their place is not in it, so any
    published pose for them is wrong (their position is set far away).
    """
    paths = sorted(Path(root).glob("*.png"))
    frames = [Frame(_file(p), _x(0.1 * i), f"tum/{p.stem}", camera=TUM_CAMERA, stamp=float(i))
              for i, p in enumerate(paths)]
    maps = frames[::4]
    queries = [f for i, f in enumerate(frames) if i % 4]
    for f in foreign:
        queries.append(Frame(f.load, _x(DISTINCT_M * 50), f"foreign/{f.name}", camera=f.camera))
    return Scenario("tum", maps, queries, tolerance_m=5.0,
                    note="one room: every 4th frame mapped; foreign frames must not relocalize")


# --- VPR-Bench corridor -------------------------------------------------------------------------

def corridor(root: Path) -> Scenario:
    """Two traversals of a corridor (lateral offset, same light): ref mapped, query queried; ±2 frames."""
    root = Path(root)
    if (root / "corridor").is_dir():
        root = root / "corridor"
    refs = sorted((root / "ref").glob("*.jpg"))
    qs = sorted((root / "query").glob("*.jpg"))
    size = (320, 240)  # 160×120 upsampled: DVF needs 128 px per side
    maps = [Frame(_file(p, size), _x(CORRIDOR_SPACING_M * i), f"ref/{p.stem}") for i, p in enumerate(refs)]
    queries = [Frame(_file(p, size), _x(CORRIDOR_SPACING_M * i), f"query/{p.stem}") for i, p in enumerate(qs)]
    return Scenario("corridor", maps, queries, tolerance_m=2 * CORRIDOR_SPACING_M,
                    note="VPR-Bench corridor, 160x120 upsampled to 320x240")


# --- the generated demo street ------------------------------------------------------------------

#: the draw of the street generator every trust calibration so far was fitted on
DEMO_STREET_SEED = 7

def demo_street(condition: str, length_m: float = 150.0, seed: int = DEMO_STREET_SEED, map_step_m: float = 2.0,
                query_step_m: float = 3.0) -> Scenario:
    """The demo's street: a day traversal mapped, ``condition`` (day, fog, night) queried; right within 5 m."""
    from ..demo.run import SIDE_LOOKING, camera_intrinsics
    from ..demo.world import make_street, render

    street = make_street(length_m, seed)
    cam = camera_intrinsics()

    def frame(x: float, cond: str, rng_seed: int) -> Frame:
        return Frame(lambda: render(street, x, cond, np.random.default_rng(rng_seed)), _x(x), f"{cond}/{x:.1f}",
                     orientation=SIDE_LOOKING.copy(), camera=cam)

    maps = [frame(x, "day", 1000 + i) for i, x in enumerate(np.arange(0.0, length_m, map_step_m))]
    queries = [frame(x, condition, 2000 + i) for i, x in enumerate(np.arange(0.5, length_m, query_step_m))]
    return Scenario(f"demo_{condition}", maps, queries, tolerance_m=5.0,
                    note=f"generated street, day map every {map_step_m} m, {condition} queries")


def simulated_odometry(queries: Sequence[Frame], seed: int = 0, noise: float = 0.05,
                       turn_deg: float = 30.0, shift=(100.0, -50.0, 2.0)) -> list[np.ndarray]:
    """The queries' positions as a robot's odometry would report them: in its own frame (turned by
    ``turn_deg`` about z and shifted), every step's length off by ``noise`` (relative σ)."""
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(seed)
    truth = np.stack([q.position for q in queries])
    steps = np.diff(truth, axis=0) * rng.normal(1.0, noise, (len(truth) - 1, 1))
    path = np.concatenate([truth[:1], truth[:1] + np.cumsum(steps, axis=0)])
    return list(Rotation.from_euler("z", turn_deg, degrees=True).apply(path) + np.asarray(shift))


def parse_places(text: str) -> range:
    """'1431-1788' → range(1431, 1789)."""
    match = re.fullmatch(r"(\d+)-(\d+)", text.strip())
    if not match:
        raise ValueError(f"expected FIRST-LAST, got {text!r}")
    return range(int(match.group(1)), int(match.group(2)) + 1)
