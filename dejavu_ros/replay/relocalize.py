"""rosbag2 → relocalization results, offline, publishing exactly what the node publishes.

The results bag holds the node's topics and types under ``/relocalizer/<name>`` (candidates,
candidate_scores, pose, matches, debug_image, map_markers), stamped with each image's stamp,
so ``ros2 bag play`` of it into rviz looks like the live node.
"""
from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

import cv2
from tqdm import tqdm

from ..config import DejavuConfig
from ..errors import DejavuError
from ..features.extractor import FeatureExtractor
from ..io.bag_reader import BagReader
from ..output.bag_writer import BagWriter
from ..io.camera_info import camera_info_to_intrinsics
from ..output.debug_image import render_result
from ..io.errors import BagDamagedError
from ..io.images import image_to_rgb
from ..output.messages import RESULT_TOPICS, MessageTypes, image_msg, map_markers_msg, result_messages
from ..relocalization.engine import RelocalizationEngine, open_map
from ..io.poses import POSE_TYPES
from .build import IMAGE_TYPES, read_track
from .report import ReplaySummary, frame_record

log = logging.getLogger(__name__)
RESULTS_PREFIX = "/relocalizer"


class ResultsBag:
    """Writes engine results as the node's messages into a rosbag2 file."""

    def __init__(self, path: str | Path, engine: RelocalizationEngine, map_frame: str, debug_images: bool = True):
        self.writer = BagWriter(path).open()
        self.mt = MessageTypes.from_rosbags()
        self.engine = engine
        self.map_frame = map_frame
        self.debug_images = debug_images
        for name, msgtype in RESULT_TOPICS.items():
            self.writer.add_topic(f"{RESULTS_PREFIX}/{name}", msgtype, latched=name == "map_markers")
        self._positions = engine.keyframe_poses()[1]

    def write(self, result, stamp_ns: int, camera_frame: str, rgb=None) -> None:
        for name, msg in result_messages(self.mt, result, stamp_ns, self.map_frame, camera_frame).items():
            self.writer.write(f"{RESULTS_PREFIX}/{name}", stamp_ns, msg)
        markers = map_markers_msg(self.mt, self._positions, result.candidates, stamp_ns, self.map_frame)
        self.writer.write(f"{RESULTS_PREFIX}/map_markers", stamp_ns, markers)
        if self.debug_images and rgb is not None:
            view = render_result(rgb, result, self.engine)
            self.writer.write(f"{RESULTS_PREFIX}/debug_image", stamp_ns, image_msg(self.mt, view, stamp_ns,
                                                                                    camera_frame))

    def close(self) -> None:
        self.writer.close()


def relocalize_bag(bag_path: str | Path, cfg: DejavuConfig, image_topic: str, *,
                   extractor: FeatureExtractor | None = None, out_bag: str | Path | None = None,
                   report: str | Path | None = None, camera_info_topic: str | None = None,
                   gt_pose_topic: str | None = None, every: int = 1, debug_images: bool = True,
                   debug_dir: str | Path | None = None, odom_topic: str | None = None,
                   progress: bool = True) -> ReplaySummary:
    """Run the engine on every ``every``-th image of a bag; returns the per-frame records.

    ``debug_dir``: also save each frame's debug view there as ``<stamp_ns>.jpg``. ``odom_topic``:
    the robot's odometry (any frame: only the distance travelled between frames is used) for the
    route filter (``engine.sequence_length`` > 0).
    """
    if not cfg.node.map_path:
        raise DejavuError("no map given (--map)")
    extractor = extractor or FeatureExtractor.from_config(cfg.features)
    engine = RelocalizationEngine(cfg, extractor, open_map(cfg, extractor, "localize"))
    summary = ReplaySummary(trust_mismatch=engine.trust_mismatch)
    errors: Counter = Counter()
    damage: list[str] = []
    results = None
    lines = open(report, "w") if report else None
    try:
        with BagReader(bag_path) as bag:
            topics = [image_topic] + ([camera_info_topic] if camera_info_topic else [])
            bag.require_topics(topics + [t for t in (gt_pose_topic, odom_topic) if t])
            bag.require_type(image_topic, IMAGE_TYPES, "image")
            if camera_info_topic:
                bag.require_type(camera_info_topic, ("sensor_msgs/msg/CameraInfo",), "camera info")
            if gt_pose_topic:
                bag.require_type(gt_pose_topic, POSE_TYPES, "ground-truth pose")
            track = read_track(bag, gt_pose_topic, damage) if gt_pose_topic else None
            if odom_topic:
                bag.require_type(odom_topic, POSE_TYPES, "odometry")
            odom = read_track(bag, odom_topic, damage) if odom_topic else None
            if out_bag:
                results = ResultsBag(out_bag, engine, cfg.node.map_frame, debug_images)
            camera, seen = None, 0
            bar = tqdm(total=bag.message_counts.get(image_topic), unit="frame", desc="relocalize",
                       disable=not progress)
            try:
                for m in bag.messages(topics):
                    if m.topic == camera_info_topic:
                        try:
                            camera = camera_info_to_intrinsics(m.msg, topic=m.topic) or camera
                        except DejavuError as exc:
                            errors[f"camera_info: {exc}"] += 1
                        continue
                    seen += 1
                    bar.update(1)
                    if (seen - 1) % every:
                        continue
                    try:
                        rgb = image_to_rgb(m.msg, topic=m.topic)
                    except DejavuError as exc:  # a bad frame is counted, the run goes on
                        errors[str(exc)] += 1
                        log.warning("%s", exc)
                        continue
                    tolerance = int(cfg.node.pose_tolerance_s * 1e9)
                    moved = odom.lookup(m.stamp_ns, tolerance) if odom else None
                    result = engine.relocalize(rgb, m.stamp_ns * 1e-9, camera,
                                               odometry=None if moved is None else moved.position)
                    gt = track.lookup(m.stamp_ns, tolerance) if track else None
                    rec = frame_record(result, gt)
                    summary.records.append(rec)
                    if lines:
                        lines.write(json.dumps(rec.as_dict()) + "\n")
                    if results:
                        results.write(result, m.stamp_ns, m.msg.header.frame_id, rgb)
                    if debug_dir is not None:
                        view = render_result(rgb, result, engine)
                        cv2.imwrite(str(Path(debug_dir) / f"{m.stamp_ns}.jpg"), cv2.cvtColor(view, cv2.COLOR_RGB2BGR))
            except BagDamagedError as exc:
                damage.append(str(exc))
            finally:
                bar.close()
    finally:
        if results:
            results.close()
        if lines:
            lines.close()
        engine.close()
    summary.errors = dict(errors)
    summary.damage = "; ".join(damage)
    return summary
