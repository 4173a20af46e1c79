"""Check a RobotCar conversion request completely before any work starts.

Everything a user can get wrong (camera name, model file, LUT size, extrinsics, CSV headers,
output path, time window) is checked here, so a conversion never fails an hour in on
something that was knowable at the start.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...output.bag_writer import bag_path_and_storage
from ...io.errors import BagError
from .errors import RobotCarFormatError
from . import geometry, layout
from .layout import CameraSpec
from .poses import VO_COLUMNS, check_csv_header, check_ins_file, read_ins
from .problems import ProblemLog

US = 1_000_000
#: a time bound below this (µs since 1970 = 1973) is taken as seconds from the first frame
_RELATIVE_LIMIT = 1e11


@dataclass
class ConvertOptions:
    run_dir: Path
    camera: str
    models_dir: Path
    out: Path
    storage: str | None = None  # None: from the --out suffix, else mcap
    start: str | None = None  # unix µs, or seconds from the first frame ("30", "30s")
    end: str | None = None
    every: int = 1
    lut: str | None = None  # LUT file, or "auto" for <models>/<model>_distortion_lut.bin
    debayer: bool = True  # False: keep the Bayer mosaic (bayer_gbrg8 / bayer_rggb8)
    extrinsics_dir: Path | None = None  # None: <models>/../extrinsics when it exists
    origin_ned: tuple[float, float, float] | None = None  # northing, easting, down; None: first INS pose
    world_frame: str = "map"
    tags_file: Path | None = None  # None: <run>/tags/<run>.yaml
    overwrite: bool = False
    compress: bool = False
    progress: bool = True
    pose_margin_s: float = 1.0  # poses are written this far beyond the frame window
    max_pose_gap_s: float = 0.2  # camera poses are interpolated only between INS rows this close


@dataclass
class ConversionPlan:
    options: ConvertOptions
    spec: CameraSpec
    model: geometry.CameraModel
    timestamps: Path
    start_us: int
    end_us: int
    frames_selected: int
    image_size: tuple[int, int]  # (width, height) of the first frame on disk
    lut_maps: tuple[np.ndarray, np.ndarray] | None
    ins_path: Path | None
    vo_path: Path | None
    extrinsics_dir: Path | None
    optical_in_base: np.ndarray | None
    ins_in_base: np.ndarray | None
    origin_ned: np.ndarray | None
    utm_zone: str
    tags: list[str]
    tags_path: Path | None
    bag_path: Path
    storage: str
    notes: list[str] = field(default_factory=list)  # non-fatal remarks for the summary

    @property
    def namespace(self) -> str:
        return f"/robotcar/{self.spec.ros_name}"

    @property
    def image_topic(self) -> str:
        if not self.options.debayer:
            return f"{self.namespace}/image_raw"
        return f"{self.namespace}/image_rect_color" if self.lut_maps else f"{self.namespace}/image_color"

    @property
    def base_frame(self) -> str:
        return "base_link" if self.ins_in_base is not None else "ins"


def parse_time_bound(text: str | None, first_us: int, name: str) -> int | None:
    if text is None or str(text).strip() == "":
        return None
    raw = str(text).strip()
    try:
        value = float(raw[:-1] if raw.endswith("s") else raw)
    except ValueError:
        raise RobotCarFormatError(f"--{name} {text!r}: expected a RobotCar timestamp (µs) or seconds "
                                  "from the first frame such as 30s") from None
    if raw.endswith("s") or abs(value) < _RELATIVE_LIMIT:
        return first_us + int(round(value * US))
    return int(value)


def _select_frames(opts: ConvertOptions, spec: CameraSpec, path: Path):
    """First pass over the (small) timestamps file: window, count, first frame present on disk."""
    entries = layout.read_timestamps(path, ProblemLog(keep=0))
    first = next(entries, None)
    if first is None:
        raise RobotCarFormatError(f"timestamps file {path} lists no frames")
    start = parse_time_bound(opts.start, first.stamp_us, "start")
    end = parse_time_bound(opts.end, first.stamp_us, "end")
    start_us = first.stamp_us if start is None else start
    end_us = 2 ** 62 if end is None else end
    if end_us < start_us:
        raise RobotCarFormatError(f"--end ({end_us}) is before --start ({start_us})")
    selected, in_window, first_image = 0, 0, None
    for entry in _chain(first, entries):
        if entry.stamp_us < start_us or entry.stamp_us > end_us:
            continue
        if in_window % opts.every == 0:
            selected += 1
            if first_image is None:
                candidate = layout.image_path(opts.run_dir, spec, entry.stamp_us)
                if candidate.is_file():
                    first_image = candidate
        in_window += 1
    if selected == 0:
        raise RobotCarFormatError(f"no frames of {path} fall between {start_us} and {end_us}")
    if first_image is None:
        raise RobotCarFormatError(f"none of the {selected} selected frames exist under "
                                  f"{opts.run_dir / spec.image_dir} (chunks not downloaded/extracted?)")
    return start_us, end_us, selected, first_image


def _chain(first, rest):
    yield first
    yield from rest


def _image_size(path: Path) -> tuple[int, int]:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None or image.ndim != 2 or image.dtype != np.uint8:
        shape = None if image is None else (image.shape, str(image.dtype))
        raise RobotCarFormatError(f"{path}: expected an 8-bit single-channel Bayer PNG, got {shape}")
    return image.shape[1], image.shape[0]


def _extrinsics_dir(opts: ConvertOptions) -> tuple[Path | None, str | None]:
    if opts.extrinsics_dir is not None:
        if not Path(opts.extrinsics_dir).is_dir():
            raise RobotCarFormatError(f"extrinsics folder not found: {opts.extrinsics_dir}")
        return Path(opts.extrinsics_dir), None
    sibling = Path(opts.models_dir).parent / "extrinsics"
    if sibling.is_dir():
        return sibling, f"extrinsics from {sibling}"
    return None, ("no extrinsics folder (--extrinsics): no /tf_static, no camera poses, odometry is of "
                  "the INS frame")


def _origin(opts: ConvertOptions, ins_path: Path | None, from_us: int) -> tuple[np.ndarray | None, str]:
    if ins_path is None:
        return (np.asarray(opts.origin_ned, float) if opts.origin_ned else None), ""
    for row in read_ins(ins_path, ProblemLog(keep=0)):
        if row.stamp_us >= from_us:
            origin = np.asarray(opts.origin_ned, float) if opts.origin_ned else row.ned
            return origin, row.utm_zone
    return (np.asarray(opts.origin_ned, float) if opts.origin_ned else None), ""


def prepare(opts: ConvertOptions) -> ConversionPlan:
    spec = layout.camera_spec(opts.camera)
    run_dir = Path(opts.run_dir)
    if not run_dir.is_dir():
        raise RobotCarFormatError(f"run folder not found: {run_dir}")
    if not Path(opts.models_dir).is_dir():
        raise RobotCarFormatError(f"models folder not found: {opts.models_dir}")
    model = geometry.read_camera_model(Path(opts.models_dir), spec)
    if opts.every < 1:
        raise RobotCarFormatError(f"--every must be >= 1, got {opts.every}")
    if opts.lut and not opts.debayer:
        raise RobotCarFormatError("--lut needs demosaiced images; it cannot be combined with --keep-bayer")
    bag_path, storage = bag_path_and_storage(opts.out, opts.storage)
    if bag_path.exists() and not opts.overwrite:
        raise BagError(f"output bag {bag_path} already exists (use --overwrite)")

    timestamps = layout.timestamps_path(run_dir, spec)
    start_us, end_us, selected, first_image = _select_frames(opts, spec, timestamps)
    width, height = _image_size(first_image)
    notes: list[str] = []
    lut_maps = None
    if opts.lut:
        auto = opts.lut == "auto"
        lut_file = geometry.lut_path_for(Path(opts.models_dir), spec) if auto else Path(opts.lut)
        lut_maps = geometry.read_lut(lut_file, width, height)
    elif opts.debayer:
        notes.append("images are not undistorted (no --lut): CameraInfo has K but no distortion model")

    extrinsics_dir, note = _extrinsics_dir(opts)
    if note:
        notes.append(note)
    optical = ins_frame = None
    if extrinsics_dir is not None:
        optical = geometry.optical_in_base(extrinsics_dir, spec, model)
        ins_frame = geometry.ins_in_base(extrinsics_dir)

    ins_path = run_dir / "gps" / "ins.csv"
    if ins_path.exists():
        check_ins_file(ins_path)
    else:
        ins_path = None
        notes.append(f"no {run_dir / 'gps' / 'ins.csv'}: no INS odometry, fixes or camera poses")
    vo_path = run_dir / "vo" / "vo.csv"
    if vo_path.exists():
        check_csv_header(vo_path, VO_COLUMNS)
    else:
        vo_path = None

    margin = int(opts.pose_margin_s * 1_000_000)
    origin, zone = _origin(opts, ins_path, start_us - margin)
    tags_path = Path(opts.tags_file) if opts.tags_file else layout.find_tags_file(run_dir)
    if opts.tags_file and not tags_path.is_file():
        raise RobotCarFormatError(f"tags file not found: {tags_path}")
    tags = layout.read_tags(tags_path) if tags_path else []
    if tags_path is None:
        notes.append(f"no tags file under {run_dir / 'tags'}: no condition tags")
    return ConversionPlan(options=opts, spec=spec, model=model, timestamps=timestamps, start_us=start_us,
                          end_us=end_us, frames_selected=selected, image_size=(width, height),
                          lut_maps=lut_maps,
                          ins_path=ins_path, vo_path=vo_path, extrinsics_dir=extrinsics_dir,
                          optical_in_base=optical, ins_in_base=ins_frame, origin_ned=origin, utm_zone=zone,
                          tags=tags, tags_path=tags_path, bag_path=bag_path, storage=storage, notes=notes)
