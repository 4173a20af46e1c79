"""rosbag2 → keyframe map, offline: the same keyframe rules as the node's mapping mode.

Images are paired with poses by stamp (interpolated within ``node.pose_tolerance_s``), with the
latest CameraInfo, and with the aligned depth image of the same stamp when one is given. The pose
topic gives the camera pose in the map frame, or — with an :class:`~dejavu_ros.io.extrinsics.Extrinsic`
(``--camera-pose`` or ``--extrinsic-from-tf``) — the robot's, which the extrinsic turns into the
camera optical frame's.
"""
from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from ..config import DejavuConfig
from ..errors import DejavuError
from ..features.extractor import FeatureExtractor
from ..io.bag_reader import BagReader
from ..io.camera_info import camera_info_to_intrinsics
from ..io.errors import BagDamagedError
from ..io.extrinsics import Extrinsic, extrinsic_from_tf
from ..io.images import depth_to_metres, image_to_rgb
from ..io.poses import POSE_TYPES, PoseTrack, iter_poses
from ..relocalization.engine import RelocalizationEngine, open_map

log = logging.getLogger(__name__)
IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
_PENDING_DEPTH = 8  # images / depth frames kept while waiting for their partner


@dataclass
class BuildSummary:
    frames_read: int = 0
    keyframes: int = 0
    skipped: Counter = field(default_factory=Counter)
    damage: str = ""
    map_path: str = ""

    def as_dict(self) -> dict:
        return {"frames_read": self.frames_read, "keyframes_added": self.keyframes,
                "skipped": dict(self.skipped), "damage": self.damage, "map": self.map_path}


def read_track(bag: BagReader, topic: str, summary_damage: list[str]) -> PoseTrack:
    """Every readable pose of ``topic``; damage is recorded, not raised."""
    track = PoseTrack(name=topic)
    try:
        for sample in iter_poses(bag, topic):
            track.add(sample)
    except BagDamagedError as exc:
        summary_damage.append(str(exc))
    return track


def build_map_from_bag(bag_path: str | Path, out: str | Path, image_topic: str, pose_topic: str,
                       cfg: DejavuConfig, extractor: FeatureExtractor | None = None, *,
                       camera_info_topic: str | None = None, depth_topic: str | None = None,
                       append: bool = False, progress: bool = True, extrinsic: Extrinsic | str | None = None,
                       camera_pose: list[float] | None = None) -> BuildSummary:
    """``extrinsic="tf"``: read T_base_camera from the bag's /tf_static (base = the pose messages'
    child frame, camera = the images' frame); ``camera_pose``: x y z roll pitch yaw of the camera in
    the base frame."""
    out = Path(out)
    if out.exists() and not append:
        raise DejavuError(f"map {out} already exists; pass --append to extend it (nothing is overwritten)")
    extractor = extractor or FeatureExtractor.from_config(cfg.features)
    summary = BuildSummary(map_path=str(out))
    damage: list[str] = []
    with BagReader(bag_path) as bag:
        topics = [image_topic] + [t for t in (camera_info_topic, depth_topic) if t]
        bag.require_topics(topics + [pose_topic])
        bag.require_type(image_topic, IMAGE_TYPES, "image")
        bag.require_type(pose_topic, POSE_TYPES, "pose")
        if camera_info_topic:
            bag.require_type(camera_info_topic, ("sensor_msgs/msg/CameraInfo",), "camera info")
        if depth_topic:
            bag.require_type(depth_topic, IMAGE_TYPES, "depth")
        track = read_track(bag, pose_topic, damage)
        if len(track) == 0:
            raise DejavuError(f"bag {bag_path}: no valid pose on {pose_topic}")
        if camera_pose is not None:
            extrinsic = Extrinsic.from_xyz_rpy(camera_pose)
        elif extrinsic == "tf":
            extrinsic = _extrinsic_from_bag(bag, track, image_topic)
        cfg.node.map_path = str(out)
        engine = RelocalizationEngine(cfg, extractor, open_map(cfg, extractor, "map"))
        tolerance = int(cfg.node.pose_tolerance_s * 1e9)
        camera, images, depths = None, OrderedDict(), OrderedDict()
        total = bag.message_counts.get(image_topic)
        bar = tqdm(total=total, unit="frame", desc="build-map", disable=not progress)
        try:
            for m in bag.messages(topics):
                if m.topic == camera_info_topic:
                    camera = _camera(m, summary) or camera
                    continue
                if m.topic == depth_topic:
                    depths[m.stamp_ns] = m
                elif m.topic == image_topic:
                    summary.frames_read += 1
                    bar.update(1)
                    images[m.stamp_ns] = (m, camera)
                for stamp in [s for s in images if not depth_topic or s in depths]:
                    img_msg, cam = images.pop(stamp)
                    _add(engine, img_msg, cam, depths.pop(stamp, None), track, tolerance, summary, str(bag_path),
                         extrinsic)
                _bound(images, depths, summary)
        except BagDamagedError as exc:
            damage.append(str(exc))
        finally:
            bar.close()
            if images:  # images whose depth frame never came
                summary.skipped["no_depth"] += len(images)
            engine.close()
    summary.damage = "; ".join(damage)
    return summary


def _camera(m, summary: BuildSummary):
    try:
        return camera_info_to_intrinsics(m.msg, topic=m.topic)
    except DejavuError as exc:
        summary.skipped[f"bad_camera_info: {exc}"] += 1
        return None


def _bound(images: OrderedDict, depths: OrderedDict, summary: BuildSummary) -> None:
    while len(images) > _PENDING_DEPTH:
        images.popitem(last=False)
        summary.skipped["no_depth"] += 1
    while len(depths) > _PENDING_DEPTH:
        depths.popitem(last=False)


def _extrinsic_from_bag(bag: BagReader, track: PoseTrack, image_topic: str) -> Extrinsic:
    if "/tf_static" not in bag.topics:
        raise DejavuError(f"bag {bag.path}: no /tf_static topic to read the camera extrinsic from; "
                          "give --camera-pose x y z roll pitch yaw")
    base = track.lookup(track.first_stamp_ns, 0).child_frame_id if track.first_stamp_ns is not None else ""
    camera = next((m.msg.header.frame_id for m in bag.messages([image_topic])), "")
    return extrinsic_from_tf((m.msg for m in bag.messages(["/tf_static"])), base, camera)


def _add(engine: RelocalizationEngine, m, camera, depth_msg, track: PoseTrack, tolerance: int,
         summary: BuildSummary, source: str, extrinsic: Extrinsic | None = None) -> None:
    pose = track.lookup(m.stamp_ns, tolerance)
    if pose is None:
        summary.skipped["no_pose_within_tolerance"] += 1
        return
    if extrinsic is not None:
        pose = extrinsic.apply(pose)
    try:
        rgb = image_to_rgb(m.msg, topic=m.topic)
        depth = depth_to_metres(depth_msg.msg, topic=depth_msg.topic) if depth_msg is not None else None
    except DejavuError as exc:
        summary.skipped[f"bad_image: {exc}"] += 1
        log.warning("%s", exc)
        return
    decision = engine.add_frame(rgb, m.stamp_ns * 1e-9, pose.position, pose.orientation,
                                        covariance=pose.covariance, camera=camera, depth=depth, source=source)
    if decision.added:
        summary.keyframes += 1
    else:
        summary.skipped[decision.reason.split(":")[0]] += 1
