"""Raw RobotCar run -> rosbag2 (one camera, INS and VO odometry, static transforms, tags).

Three time-sorted streams (frames, INS rows, VO rows) are read lazily and merged by stamp, so
memory stays constant however long the run. Topics (``<ns>`` = /robotcar/<camera>, e.g.
/robotcar/stereo_centre):

* ``<ns>/image_color`` (rgb8), ``<ns>/image_raw`` (Bayer, --keep-bayer) or
  ``<ns>/image_rect_color`` (undistorted with the SDK LUT), and ``<ns>/camera_info``;
* ``<ns>/pose``: geometry_msgs/PoseStamped of the camera's optical frame in the world frame at
  each image stamp (INS interpolated), the pose a keyframe map needs;
* ``/robotcar/ins/odometry`` (nav_msgs/Odometry, world -> base_link) and ``/robotcar/ins/fix``;
* ``/robotcar/vo/odometry`` (chained VO, vo_odom -> base_link) when vo/vo.csv exists;
* ``/tf_static``: base_link -> ins and base_link -> <camera>_optical.

The world frame is ENU with its origin at the first INS pose (or ``origin_ned``); the origin's
UTM northing/easting/down and zone go into the bag metadata so runs can be put in one frame.
"""
from __future__ import annotations

import dataclasses
import heapq
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
from scipy.spatial.transform import Rotation
from tqdm import tqdm

from ...geometry import CameraIntrinsics
from ...output.bag_writer import BagWriter
from ...io.camera_info import intrinsics_to_camera_info
from ...io.images import demosaic, image_message
from ...io.poses import PoseSample, interpolate
from ...io.typestore import header
from . import bag_messages as bm
from . import geometry, layout
from .plan import ConversionPlan
from .poses import InsRow, read_ins, read_vo
from .problems import ProblemLog

US_TO_NS = 1000
INS_ODOM, INS_FIX, VO_ODOM = "/robotcar/ins/odometry", "/robotcar/ins/fix", "/robotcar/vo/odometry"


@dataclass
class ConversionSummary:
    bag: Path
    frames_selected: int = 0
    frames_written: int = 0
    frames_missing: Counter = field(default_factory=Counter)  # chunk -> frames listed but not on disk
    frames_unreadable: int = 0
    camera_poses: int = 0
    frames_without_pose: int = 0
    ins_poses: int = 0
    vo_poses: int = 0
    tags: list[str] = field(default_factory=list)
    topics: dict[str, int] = field(default_factory=dict)
    problems: ProblemLog = field(default_factory=ProblemLog)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        missing = sum(self.frames_missing.values())
        by_chunk = ", ".join(f"chunk {c}: {n}" for c, n in sorted(self.frames_missing.items()))
        out = [f"wrote {self.bag}",
               f"frames: {self.frames_written} written of {self.frames_selected} selected, "
               f"{missing} missing on disk" + (f" ({by_chunk})" if by_chunk else "")
               + f", {self.frames_unreadable} unreadable",
               f"poses: {self.ins_poses} INS, {self.vo_poses} VO, {self.camera_poses} camera poses "
               f"({self.frames_without_pose} frames without one)",
               f"condition tags: {', '.join(self.tags) or '(none)'}"]
        out += [f"  {topic}: {count}" for topic, count in self.topics.items()]
        out += [f"note: {n}" for n in self.notes]
        if self.problems.total:
            out.append(f"skipped {self.problems.total} malformed input lines/files:")
            out += self.problems.lines()
        return out


def _to_sample(stamp_us: int, transform: np.ndarray) -> PoseSample:
    rotation = Rotation.from_matrix(transform[:3, :3]).as_quat()
    return PoseSample(stamp_us * US_TO_NS, transform[:3, 3].copy(), rotation)


def _to_matrix(sample: PoseSample) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3] = Rotation.from_quat(sample.orientation).as_matrix()
    out[:3, 3] = sample.position
    return out


class _Converter:
    def __init__(self, plan: ConversionPlan, problems: ProblemLog):
        self.plan = plan
        self.opts = plan.options
        self.problems = problems
        self.summary = ConversionSummary(bag=plan.bag_path, frames_selected=plan.frames_selected,
                                         tags=list(plan.tags), problems=problems, notes=list(plan.notes))
        margin = int(self.opts.pose_margin_s * 1_000_000)
        self.pose_from_us, self.pose_to_us = plan.start_us - margin, plan.end_us + margin
        self.base_in_ins = geometry.invert(plan.ins_in_base) if plan.ins_in_base is not None else None
        ns = plan.namespace
        self.info_topic, self.pose_topic = f"{ns}/camera_info", f"{ns}/pose"

    # -- INS -------------------------------------------------------------------------------
    def world_from_base(self, row: InsRow) -> np.ndarray:
        pose = geometry.ned_to_enu_pose(row.northing, row.easting, row.down, row.roll, row.pitch, row.yaw,
                                        self.plan.origin_ned)
        return pose if self.base_in_ins is None else pose @ self.base_in_ins

    def ins_stream(self) -> Iterator[tuple[int, list]]:
        plan = self.plan
        for row in read_ins(plan.ins_path, self.problems):
            if row.stamp_us < self.pose_from_us:
                continue
            if row.stamp_us > self.pose_to_us:
                return
            stamp = row.stamp_us * US_TO_NS
            pose = self.world_from_base(row)
            velocity_ned = np.array([row.velocity_north, row.velocity_east, row.velocity_down])
            velocity_child = pose[:3, :3].T @ (geometry.NED_TO_ENU @ velocity_ned)
            odom = bm.odometry(stamp, self.opts.world_frame, plan.base_frame, pose, velocity_child)
            fix = bm.nav_sat_fix(stamp, "ins", row.latitude, row.longitude, row.altitude,
                                 good=row.status == "INS_SOLUTION_GOOD")
            self.summary.ins_poses += 1
            yield stamp, [(INS_ODOM, odom), (INS_FIX, fix)]

    def vo_stream(self) -> Iterator[tuple[int, list]]:
        for vo in read_vo(self.plan.vo_path, self.problems):
            if vo.stamp_us < self.pose_from_us:
                continue
            if vo.stamp_us > self.pose_to_us:
                return
            stamp = vo.stamp_us * US_TO_NS
            self.summary.vo_poses += 1
            motion = geometry.frd_to_flu_motion(vo.transform)
            yield stamp, [(VO_ODOM, bm.odometry(stamp, "vo_odom", "base_link", motion))]

    # -- frames ----------------------------------------------------------------------------
    def _camera_pose_lookup(self):
        """Interpolates world<-optical at increasing stamps from a second, lazy pass over ins.csv."""
        plan = self.plan
        if plan.ins_path is None or plan.optical_in_base is None or plan.origin_ned is None:
            return None
        rows = read_ins(plan.ins_path, ProblemLog(keep=0))  # problems are reported by ins_stream
        max_gap = int(self.opts.max_pose_gap_s * 1_000_000)
        state = {"prev": None, "next": next(rows, None)}

        def at(stamp_us: int) -> np.ndarray | None:
            while state["next"] is not None and state["next"].stamp_us < stamp_us:
                state["prev"], state["next"] = state["next"], next(rows, None)
            prev, nxt = state["prev"], state["next"]
            if nxt is not None and nxt.stamp_us == stamp_us:
                return self.world_from_base(nxt) @ plan.optical_in_base
            if prev is None or nxt is None or nxt.stamp_us - prev.stamp_us > max_gap:
                return None
            a = _to_sample(prev.stamp_us, self.world_from_base(prev))
            b = _to_sample(nxt.stamp_us, self.world_from_base(nxt))
            return _to_matrix(interpolate(a, b, stamp_us * US_TO_NS)) @ plan.optical_in_base

        return at

    def _load(self, path: Path) -> np.ndarray | None:
        raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        expected = self.plan.image_size
        if raw is None:
            self.problems.add(path, None, "cannot be read as an image")
        elif raw.ndim != 2 or raw.dtype != np.uint8:
            self.problems.add(path, None, f"expected 8-bit single-channel Bayer, got {raw.dtype} {raw.shape}")
        elif (raw.shape[1], raw.shape[0]) != expected:
            self.problems.add(path, None, f"size {raw.shape[1]}x{raw.shape[0]} differs from the first "
                                          f"frame's {expected[0]}x{expected[1]}")
        else:
            return raw
        self.summary.frames_unreadable += 1
        return None

    def frame_stream(self, bar: tqdm) -> Iterator[tuple[int, list]]:
        plan, opts, spec = self.plan, self.opts, self.plan.spec
        width, height = plan.image_size
        intr = CameraIntrinsics.from_fxfycxcy(plan.model.fx, plan.model.fy, plan.model.cx, plan.model.cy,
                                              width, height, frame_id=spec.optical_frame)
        info = intrinsics_to_camera_info(intr, header(0, spec.optical_frame),
                                         distortion_known=plan.lut_maps is not None)
        pose_at = self._camera_pose_lookup()
        in_window = 0
        for entry in layout.read_timestamps(plan.timestamps, self.problems):
            if entry.stamp_us < plan.start_us or entry.stamp_us > plan.end_us:
                continue
            in_window += 1
            if (in_window - 1) % opts.every:
                continue
            bar.update(1)
            path = layout.image_path(opts.run_dir, spec, entry.stamp_us)
            if not path.is_file():
                self.summary.frames_missing[entry.chunk] += 1
                continue
            raw = self._load(path)
            if raw is None:
                continue
            stamp = entry.stamp_us * US_TO_NS
            hdr = header(stamp, spec.optical_frame)
            if opts.debayer:
                rgb = demosaic(raw, spec.bayer)
                if plan.lut_maps is not None:
                    rgb = geometry.undistort(rgb, plan.lut_maps)
                image = image_message(rgb, "rgb8", hdr)
            else:
                image = image_message(raw, f"bayer_{spec.bayer}8", hdr)
            writes = [(plan.image_topic, image), (self.info_topic, dataclasses.replace(info, header=hdr))]
            camera_pose = pose_at(entry.stamp_us) if pose_at else None
            if camera_pose is not None:
                writes.append((self.pose_topic, bm.pose_stamped(stamp, opts.world_frame, camera_pose)))
                self.summary.camera_poses += 1
            elif pose_at is not None:
                self.summary.frames_without_pose += 1
            self.summary.frames_written += 1
            yield stamp, writes

    # -- the bag ---------------------------------------------------------------------------
    def static_transforms(self, stamp: int):
        plan = self.plan
        if plan.optical_in_base is None:
            return None
        return bm.tf_message([
            bm.transform_stamped(stamp, "base_link", "ins", plan.ins_in_base),
            bm.transform_stamped(stamp, "base_link", plan.spec.optical_frame, plan.optical_in_base)])

    def metadata(self) -> dict[str, str]:
        plan = self.plan
        meta = {"robotcar.run": Path(self.opts.run_dir).resolve().name, "robotcar.camera": plan.spec.name,
                "robotcar.tags": ",".join(plan.tags), "robotcar.world_frame": self.opts.world_frame,
                "robotcar.image_topic": plan.image_topic, "robotcar.camera_info_topic": self.info_topic,
                "robotcar.undistorted": str(plan.lut_maps is not None).lower()}
        if plan.origin_ned is not None:
            n, e, d = plan.origin_ned
            meta["robotcar.origin_utm"] = f"{n:.3f},{e:.3f},{d:.3f},{plan.utm_zone}"
        if plan.optical_in_base is not None and plan.ins_path is not None:
            meta["robotcar.camera_pose_topic"] = self.pose_topic
        return meta

    def run(self) -> ConversionSummary:
        plan, opts = self.plan, self.opts
        writer = BagWriter(plan.bag_path, plan.storage, compress=opts.compress, overwrite=opts.overwrite)
        bar = tqdm(total=plan.frames_selected, unit="frame", disable=not opts.progress, desc=plan.spec.name)
        with writer as bag, bar:
            bag.add_topic(plan.image_topic, "sensor_msgs/msg/Image")
            bag.add_topic(self.info_topic, "sensor_msgs/msg/CameraInfo")
            streams = [self.frame_stream(bar)]
            if plan.ins_path is not None and plan.origin_ned is not None:
                bag.add_topic(INS_ODOM, "nav_msgs/msg/Odometry")
                bag.add_topic(INS_FIX, "sensor_msgs/msg/NavSatFix")
                streams.append(self.ins_stream())
                if plan.optical_in_base is not None:
                    bag.add_topic(self.pose_topic, "geometry_msgs/msg/PoseStamped")
            if plan.vo_path is not None:
                bag.add_topic(VO_ODOM, "nav_msgs/msg/Odometry")
                streams.append(self.vo_stream())
            if plan.optical_in_base is not None:
                bag.add_topic("/tf_static", "tf2_msgs/msg/TFMessage", latched=True)
            for key, value in self.metadata().items():
                bag.set_metadata(key, value)
            static_written = False
            for stamp, writes in heapq.merge(*streams, key=lambda item: item[0]):
                if not static_written:
                    static = self.static_transforms(stamp)
                    if static is not None:
                        bag.write("/tf_static", stamp, static)
                    static_written = True
                for topic, msg in writes:
                    bag.write(topic, stamp, msg)
            self.summary.topics = dict(bag.counts)
        return self.summary


def convert(plan: ConversionPlan) -> ConversionSummary:
    """Write the bag described by a checked plan (see :func:`dejavu_ros.datasets.robotcar.plan.prepare`)."""
    return _Converter(plan, ProblemLog()).run()
