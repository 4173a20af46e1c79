"""The node's publishers: results, debug image, map markers and diagnostics.

Messages come from :mod:`dejavu_ros.output.messages` (the same builders the offline replay uses);
this class only decides what to publish when: the debug image and per-frame markers are built
only while somebody subscribes, and keyframe markers are rebuilt only when the map changes.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from ..output import messages as build
from ..output.debug_image import render_result
from ..relocalization.result import RelocalizationResult

_RESULT_DEPTH = 10
_THUMBNAIL_CACHE = 64


class ResultPublisher:
    def __init__(self, node: Any, mt: build.MessageTypes, map_frame: str, marker_scale: float = 0.5):
        self._node = node
        self._mt = mt
        self.map_frame = map_frame
        self._marker_scale = marker_scale
        latched = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self._pubs = {name: node.create_publisher(mt.cls(msgtype), f"~/{name}",
                                                  latched if name == "map_markers" else _RESULT_DEPTH)
                      for name, msgtype in build.RESULT_TOPICS.items()}
        self._diagnostics = node.create_publisher(mt.cls(build.DIAGNOSTICS_TYPE), "/diagnostics",
                                                  _RESULT_DEPTH)
        self._keyframe_markers: list[Any] = []
        self._thumbnails: OrderedDict[int, np.ndarray | None] = OrderedDict()
        self._engine: Any = None  # the engine of the frame being drawn

    def wants(self, name: str) -> bool:
        return self._pubs[name].get_subscription_count() > 0

    def publish_result(self, result: RelocalizationResult, stamp_ns: int, camera_frame: str,
                       rgb: np.ndarray, engine: Any) -> None:
        """Publish one frame's outputs, all stamped with the image's stamp."""
        msgs = build.result_messages(self._mt, result, stamp_ns, self.map_frame, camera_frame)
        for name, msg in msgs.items():
            self._pubs[name].publish(msg)
        if self.wants("debug_image"):
            self._pubs["debug_image"].publish(build.image_msg(
                self._mt, self._debug_view(result, rgb, engine), stamp_ns, camera_frame))
        if self.wants("map_markers"):
            self._publish_markers(result.candidates, stamp_ns)

    def refresh_map(self, engine: Any, stamp_ns: int) -> None:
        """Rebuild the keyframe and path markers (after start, a new keyframe or a reload) and publish."""
        _, positions, _ = engine.keyframe_poses()
        positions = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
        self._keyframe_markers = build.keyframe_markers(self._mt, positions, stamp_ns, self.map_frame,
                                                        self._marker_scale)
        self._thumbnails.clear()
        self._publish_markers([], stamp_ns)

    def pose_msg(self, position, orientation, covariance, stamp_ns: int) -> Any:
        """PoseWithCovarianceStamped in the map frame (the ``initialpose`` hand-off)."""
        return build.pose_stamped_msg(self._mt, position, orientation, covariance, stamp_ns, self.map_frame)

    def transform_msg(self, transform, stamp_ns: int, parent: str, child: str) -> Any:
        return build.transform_msg(self._mt, transform[0], transform[1], stamp_ns, parent, child)

    def publish_diagnostics(self, report: build.DiagnosticReport, stamp_ns: int) -> None:
        self._diagnostics.publish(build.diagnostics_msg(self._mt, stamp_ns, [report]))

    def _publish_markers(self, candidates: list, stamp_ns: int) -> None:
        highlight = build.candidate_marker(self._mt, candidates, stamp_ns, self.map_frame,
                                           2 * self._marker_scale)
        markers = build.marker_array_msg(self._mt, self._keyframe_markers + [highlight])
        self._pubs["map_markers"].publish(markers)

    def _debug_view(self, result: RelocalizationResult, rgb: np.ndarray, engine: Any) -> np.ndarray:
        self._engine = engine
        return render_result(rgb, result, self)

    # the keyframe source render_result reads: the engine's, with the thumbnails cached

    def keyframe_image_size(self, keyframe_id: int) -> tuple[int, int] | None:
        return self._engine.keyframe_image_size(keyframe_id)

    def keyframe_thumbnail(self, keyframe_id: int) -> np.ndarray | None:
        if keyframe_id in self._thumbnails:
            self._thumbnails.move_to_end(keyframe_id)
        else:
            self._thumbnails[keyframe_id] = self._engine.keyframe_thumbnail(keyframe_id)
            if len(self._thumbnails) > _THUMBNAIL_CACHE:
                self._thumbnails.popitem(last=False)
        return self._thumbnails[keyframe_id]
