"""ROS 2 messages built from a :class:`RelocalizationResult`, for the node and the offline replay alike.

rclpy and rosbags expose the same ROS 2 types with the same field names, so every builder here
takes a :class:`MessageTypes` (the message classes of one backend) and constructs messages by
type name with keyword fields. The node calls :meth:`MessageTypes.from_rclpy`; the results bag
is written with :meth:`MessageTypes.from_rosbags`. Stamps are integer nanoseconds (the image's
``header.stamp`` converted exactly, never through a float).
"""
from __future__ import annotations

import array
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from ..errors import DejavuError
from ..relocalization.result import Candidate, RelocalizationResult

#: per-candidate point fields of ``~/candidate_scores`` (all float32)
CANDIDATE_FIELDS = ("x", "y", "z", "keyframe_id", "rank", "shortlist_score", "cx_score", "inliers", "confidence",
                    "overlap", "scale")
#: per-inlier point fields of ``~/matches`` (all float32; pixel coordinates)
MATCH_FIELDS = ("u_query", "v_query", "u_map", "v_map", "score", "keyframe_id")

#: output name -> ROS 2 type; the node publishes ``~/<name>``, the replay writes ``<prefix>/<name>``
RESULT_TOPICS = {
    "candidates": "geometry_msgs/msg/PoseArray",
    "candidate_scores": "sensor_msgs/msg/PointCloud2",
    "pose": "geometry_msgs/msg/PoseWithCovarianceStamped",
    "matches": "sensor_msgs/msg/PointCloud2",
    "debug_image": "sensor_msgs/msg/Image",
    "map_markers": "visualization_msgs/msg/MarkerArray",
}
DIAGNOSTICS_TYPE = "diagnostic_msgs/msg/DiagnosticArray"

_POINTFIELD_FLOAT32 = 7  # sensor_msgs/PointField.FLOAT32, identical in every distribution
_NUMPY_OF_POINTFIELD = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 8: "f8"}


class MessageBuildError(DejavuError, ValueError):
    """A result cannot be turned into a message (the message names the field)."""


class MessageTypes:
    """The message classes of one backend, looked up by ROS 2 type name ("pkg/msg/Name")."""

    def __init__(self, resolve: Callable[[str], Any], uint8_data: Callable[[Any], Any],
                 byte: Callable[[int], Any] = int, missing_fields: Callable[[str, dict], dict] | None = None,
                 backend: str = ""):
        self._resolve = resolve
        self._uint8_data = uint8_data
        self._byte = byte
        self._missing_fields = missing_fields
        self._classes: dict[str, Any] = {}
        self.backend = backend

    @classmethod
    def from_rosbags(cls, typestore: Any = None) -> "MessageTypes":
        """rosbags dataclasses (no field defaults: fields a builder leaves out get zero values)."""
        if typestore is None:
            from ..io.typestore import typestore as shared_typestore

            typestore = shared_typestore()
        zeros = _RosbagsZeros(typestore)
        return cls(lambda name: typestore.types[name], _numpy_uint8, int, zeros.missing, backend="rosbags")

    @classmethod
    def from_rclpy(cls) -> "MessageTypes":
        """rclpy message classes; imports the ``<pkg>.msg`` modules on first use (node only)."""
        def resolve(name: str) -> Any:
            package, _, type_name = name.split("/")
            return getattr(importlib.import_module(f"{package}.msg"), type_name)

        return cls(resolve, _array_uint8, lambda v: bytes([v]), None, backend="rclpy")

    def cls(self, msgtype: str) -> Any:
        if msgtype not in self._classes:
            try:
                self._classes[msgtype] = self._resolve(msgtype)
            except (KeyError, AttributeError, ImportError, ValueError) as exc:
                raise MessageBuildError(f"message type {msgtype} is not available ({exc})") from None
        return self._classes[msgtype]

    def new(self, msgtype: str, **fields: Any) -> Any:
        """Construct ``msgtype`` from keyword fields (the same call works for both backends)."""
        if self._missing_fields is not None:
            fields.update(self._missing_fields(msgtype, fields))
        return self.cls(msgtype)(**fields)

    def const(self, msgtype: str, name: str) -> int:
        return int(getattr(self.cls(msgtype), name))

    def uint8(self, data: Any) -> Any:
        """A ``uint8[]`` payload in the backend's representation."""
        return self._uint8_data(data)

    def byte(self, value: int) -> Any:
        """A ROS ``byte`` field (rclpy wants a 1-byte ``bytes``, rosbags an int)."""
        return self._byte(int(value))


def _numpy_uint8(data: Any) -> np.ndarray:
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    return np.frombuffer(bytes(data), dtype=np.uint8)


def _array_uint8(data: Any) -> array.array:
    if isinstance(data, np.ndarray):
        data = np.ascontiguousarray(data).tobytes()
    return array.array("B", bytes(data))


class _RosbagsZeros:
    """Zero values for fields a builder does not set (e.g. Marker.texture, which only some distros have)."""

    _NUMERIC = {"bool": np.bool_, "byte": np.uint8, "char": np.uint8, "int8": np.int8, "uint8": np.uint8,
                "int16": np.int16, "uint16": np.uint16, "int32": np.int32, "uint32": np.uint32,
                "int64": np.int64, "uint64": np.uint64, "float32": np.float32, "float64": np.float64}

    def __init__(self, typestore: Any):
        from rosbags.interfaces import Nodetype

        self._store = typestore
        self._nodetype = Nodetype

    def missing(self, msgtype: str, given: dict) -> dict:
        _, fielddefs = self._store.fielddefs[msgtype]
        return {name: self._zero(desc) for name, desc in fielddefs if name not in given}

    def _zero(self, desc: tuple) -> Any:
        kind, rest = desc
        nt = self._nodetype
        if kind == nt.BASE:
            base = rest[0]
            if base in ("string", "wstring"):
                return ""
            if base == "bool":
                return False
            return 0.0 if base.startswith("float") else 0
        if kind == nt.NAME:
            return self._store.types[rest](**self.missing(rest, {}))
        sub, count = rest
        numeric = sub[0] == nt.BASE and sub[1][0] in self._NUMERIC
        length = count if kind == nt.ARRAY else 0
        if numeric:
            return np.zeros(length, dtype=self._NUMERIC[sub[1][0]])
        return [self._zero(sub) for _ in range(length)]


# --- small pieces ---------------------------------------------------------------------------

def seconds_to_ns(seconds: float) -> int:
    """Float seconds -> integer nanoseconds (for stamps that only exist as floats)."""
    return int(round(float(seconds) * 1e9))


def time_msg(mt: MessageTypes, stamp_ns: int) -> Any:
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return mt.new("builtin_interfaces/msg/Time", sec=sec, nanosec=nanosec)


def header_msg(mt: MessageTypes, stamp_ns: int, frame_id: str) -> Any:
    return mt.new("std_msgs/msg/Header", stamp=time_msg(mt, stamp_ns), frame_id=str(frame_id))


def _vector(value: Any, size: int, what: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    if arr.shape != (size,) or not np.all(np.isfinite(arr)):
        raise MessageBuildError(f"{what}: expected {size} finite numbers, got {np.asarray(value).tolist()!r}")
    return arr


def point_msg(mt: MessageTypes, xyz: Any, what: str = "point") -> Any:
    x, y, z = _vector(xyz, 3, what)
    return mt.new("geometry_msgs/msg/Point", x=float(x), y=float(y), z=float(z))


def pose_msg(mt: MessageTypes, position: Any, orientation: Any, what: str = "pose") -> Any:
    qx, qy, qz, qw = _vector(orientation, 4, f"{what}.orientation")
    return mt.new("geometry_msgs/msg/Pose", position=point_msg(mt, position, f"{what}.position"),
                  orientation=mt.new("geometry_msgs/msg/Quaternion", x=float(qx), y=float(qy), z=float(qz),
                                     w=float(qw)))


# --- point clouds ---------------------------------------------------------------------------

def float32_cloud_msg(mt: MessageTypes, names: Sequence[str], columns: np.ndarray, stamp_ns: int,
                      frame_id: str) -> Any:
    """An unorganised PointCloud2 (height 1) whose points are the rows of ``columns`` (N×len(names))."""
    columns = np.asarray(columns, dtype=np.float32).reshape(-1, len(names))
    point_step = 4 * len(names)
    fields = [mt.new("sensor_msgs/msg/PointField", name=name, offset=4 * i, datatype=_POINTFIELD_FLOAT32,
                     count=1) for i, name in enumerate(names)]
    data = np.ascontiguousarray(columns.astype("<f4", copy=False)).tobytes()
    return mt.new("sensor_msgs/msg/PointCloud2", header=header_msg(mt, stamp_ns, frame_id), height=1,
                  width=len(columns), fields=fields, is_bigendian=False, point_step=point_step,
                  row_step=point_step * len(columns), data=mt.uint8(data),
                  is_dense=bool(np.all(np.isfinite(columns))))


def cloud_to_array(msg: Any) -> np.ndarray:
    """Decode a PointCloud2 of either backend into a numpy structured array (one row per point)."""
    order = ">" if msg.is_bigendian else "<"
    names, formats, offsets = [], [], []
    for f in msg.fields:
        if f.datatype not in _NUMPY_OF_POINTFIELD:
            raise MessageBuildError(f"PointCloud2 field {f.name!r}: unknown datatype {f.datatype}")
        names.append(f.name)
        formats.append((order + _NUMPY_OF_POINTFIELD[f.datatype], (f.count,)) if f.count > 1
                       else order + _NUMPY_OF_POINTFIELD[f.datatype])
        offsets.append(f.offset)
    dtype = np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": msg.point_step})
    raw = np.frombuffer(bytes(msg.data), dtype=np.uint8)
    rows = raw.reshape(msg.height, msg.row_step)[:, :msg.width * msg.point_step] if msg.height else raw[:0]
    return np.ascontiguousarray(rows).view(dtype).reshape(-1)


# --- result messages ------------------------------------------------------------------------

def candidates_msg(mt: MessageTypes, result: RelocalizationResult, stamp_ns: int, frame_id: str) -> Any:
    """PoseArray of the ranked candidates' keyframe poses, best first."""
    poses = [pose_msg(mt, c.position, c.orientation, f"candidate {c.keyframe_id}") for c in _ranked(result)]
    return mt.new("geometry_msgs/msg/PoseArray", header=header_msg(mt, stamp_ns, frame_id), poses=poses)


def candidate_scores_msg(mt: MessageTypes, result: RelocalizationResult, stamp_ns: int, frame_id: str) -> Any:
    """One point per candidate at its keyframe position carrying the scores (rviz colours by cx_score)."""
    rows = [[*_vector(c.position, 3, f"candidate {c.keyframe_id}.position"), c.keyframe_id, c.rank,
             c.shortlist_score, c.cx_score, c.inliers, c.confidence, c.overlap, c.scale] for c in _ranked(result)]
    return float32_cloud_msg(mt, CANDIDATE_FIELDS, np.asarray(rows, dtype=np.float64).reshape(-1, len(CANDIDATE_FIELDS)),
                             stamp_ns, frame_id)


def pose_stamped_msg(mt: MessageTypes, position, orientation, covariance, stamp_ns: int, frame_id: str) -> Any:
    """geometry_msgs/PoseWithCovarianceStamped (covariance 6×6, x y z roll pitch yaw)."""
    cov = np.asarray(covariance, dtype=np.float64)
    if cov.shape != (6, 6):
        raise MessageBuildError(f"pose.covariance: expected a 6×6 matrix, got shape {cov.shape}")
    body = mt.new("geometry_msgs/msg/PoseWithCovariance", pose=pose_msg(mt, position, orientation, "pose"),
                  covariance=np.ascontiguousarray(cov.reshape(36)))
    return mt.new("geometry_msgs/msg/PoseWithCovarianceStamped", header=header_msg(mt, stamp_ns, frame_id),
                  pose=body)


def pose_with_covariance_msg(mt: MessageTypes, result: RelocalizationResult, stamp_ns: int,
                             frame_id: str) -> Any | None:
    """The trusted camera pose, or None when the frame was not relocalized."""
    if not result.relocalized or result.pose is None:
        return None
    return pose_stamped_msg(mt, result.pose.position, result.pose.orientation, result.pose.covariance,
                            stamp_ns, frame_id)


def transform_msg(mt: MessageTypes, translation, rotation, stamp_ns: int, parent: str, child: str) -> Any:
    """geometry_msgs/TransformStamped parent → child (a TF edge)."""
    tx, ty, tz = _vector(translation, 3, "transform.translation")
    qx, qy, qz, qw = _vector(rotation, 4, "transform.rotation")
    return mt.new("geometry_msgs/msg/TransformStamped", header=header_msg(mt, stamp_ns, parent), child_frame_id=child,
                  transform=mt.new("geometry_msgs/msg/Transform",
                                   translation=mt.new("geometry_msgs/msg/Vector3", x=tx, y=ty, z=tz),
                                   rotation=mt.new("geometry_msgs/msg/Quaternion", x=qx, y=qy, z=qz, w=qw)))


def matches_msg(mt: MessageTypes, result: RelocalizationResult, stamp_ns: int, frame_id: str) -> Any:
    """The inlier matches (query and keyframe pixels) of the published pose; empty when the frame was
    not relocalized (a rejected verification's inliers are not matches anyone should use)."""
    v = result.verification
    if not result.relocalized or v is None or len(v.query_xy) == 0:
        return float32_cloud_msg(mt, MATCH_FIELDS, np.zeros((0, len(MATCH_FIELDS))), stamp_ns, frame_id)
    q = np.asarray(v.query_xy, dtype=np.float64).reshape(-1, 2)
    m = np.asarray(v.map_xy, dtype=np.float64).reshape(-1, 2)
    s = np.asarray(v.scores, dtype=np.float64).reshape(-1)
    if not len(q) == len(m) == len(s):
        raise MessageBuildError(f"verification of keyframe {v.keyframe_id}: query_xy, map_xy and scores have "
                                f"different lengths ({len(q)}, {len(m)}, {len(s)})")
    cols = np.column_stack([q, m, s, np.full(len(q), v.keyframe_id, dtype=np.float64)])
    return float32_cloud_msg(mt, MATCH_FIELDS, cols, stamp_ns, frame_id)


def image_msg(mt: MessageTypes, rgb: np.ndarray, stamp_ns: int, frame_id: str) -> Any:
    """sensor_msgs/Image, rgb8."""
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise MessageBuildError(f"image: expected an H×W×3 uint8 array, got {getattr(rgb, 'shape', rgb)!r}")
    height, width = rgb.shape[:2]
    return mt.new("sensor_msgs/msg/Image", header=header_msg(mt, stamp_ns, frame_id), height=height,
                  width=width, encoding="rgb8", is_bigendian=0, step=3 * width, data=mt.uint8(rgb))


def result_messages(mt: MessageTypes, result: RelocalizationResult, stamp_ns: int, map_frame: str,
                    camera_frame: str) -> dict[str, Any]:
    """Every per-frame output except the debug image and markers: {name in RESULT_TOPICS: message}."""
    out = {"candidates": candidates_msg(mt, result, stamp_ns, map_frame),
           "candidate_scores": candidate_scores_msg(mt, result, stamp_ns, map_frame),
           "matches": matches_msg(mt, result, stamp_ns, camera_frame)}
    pose = pose_with_covariance_msg(mt, result, stamp_ns, map_frame)
    if pose is not None:
        out["pose"] = pose
    return out


def _ranked(result: RelocalizationResult) -> list[Candidate]:
    return sorted(result.candidates, key=lambda c: c.rank)


# --- map markers ----------------------------------------------------------------------------

_MARKER = "visualization_msgs/msg/Marker"


def _marker(mt: MessageTypes, stamp_ns: int, frame_id: str, ns: str, kind: str, points: list, scale: float,
            rgba: tuple, colors: list | None = None) -> Any:
    action = "ADD" if points else "DELETE"
    scale = float(scale)
    return mt.new(
        _MARKER, header=header_msg(mt, stamp_ns, frame_id), ns=ns, id=0, type=mt.const(_MARKER, kind),
        action=mt.const(_MARKER, action), pose=pose_msg(mt, (0, 0, 0), (0, 0, 0, 1)),
        scale=mt.new("geometry_msgs/msg/Vector3", x=scale, y=scale, z=scale), color=_color(mt, rgba),
        lifetime=mt.new("builtin_interfaces/msg/Duration", sec=0, nanosec=0), frame_locked=False,
        points=points, colors=colors or [], text="", mesh_resource="", mesh_use_embedded_materials=False)


def _color(mt: MessageTypes, rgba: tuple) -> Any:
    r, g, b, a = (float(v) for v in rgba)
    return mt.new("std_msgs/msg/ColorRGBA", r=r, g=g, b=b, a=a)


def keyframe_markers(mt: MessageTypes, positions: np.ndarray, stamp_ns: int, frame_id: str,
                     scale: float = 0.5) -> list[Any]:
    """Keyframe positions (SPHERE_LIST, ns "keyframes") and the path through them (LINE_STRIP, ns "path").

    Built once per map change; the node republishes them with fresh candidate markers.
    """
    pts = [point_msg(mt, p, f"keyframe {i}") for i, p in enumerate(np.asarray(positions).reshape(-1, 3))]
    return [_marker(mt, stamp_ns, frame_id, "keyframes", "SPHERE_LIST", pts, scale, (0.2, 0.5, 1.0, 0.8)),
            _marker(mt, stamp_ns, frame_id, "path", "LINE_STRIP", pts if len(pts) > 1 else [], scale / 5,
                    (0.7, 0.7, 0.7, 0.6))]


def candidate_marker(mt: MessageTypes, candidates: Iterable[Candidate], stamp_ns: int, frame_id: str,
                     scale: float = 1.0) -> Any:
    """Current candidates (SPHERE_LIST, ns "candidates"): the best green, the others fading to red."""
    ranked = sorted(candidates, key=lambda c: c.rank)
    pts = [point_msg(mt, c.position, f"candidate {c.keyframe_id}") for c in ranked]
    colors = [_color(mt, _rank_color(i, len(ranked))) for i in range(len(ranked))]
    return _marker(mt, stamp_ns, frame_id, "candidates", "SPHERE_LIST", pts, scale, (0.0, 1.0, 0.0, 1.0),
                   colors)


def _rank_color(rank: int, count: int) -> tuple:
    t = rank / max(count - 1, 1)
    return (t, 1.0 - t, 0.0, 1.0 - 0.5 * t)


def marker_array_msg(mt: MessageTypes, markers: list[Any]) -> Any:
    return mt.new("visualization_msgs/msg/MarkerArray", markers=list(markers))


def map_markers_msg(mt: MessageTypes, positions: np.ndarray, candidates: Iterable[Candidate], stamp_ns: int,
                    frame_id: str, scale: float = 0.5) -> Any:
    """The whole ``~/map_markers`` message: keyframes, path and highlighted candidates."""
    return marker_array_msg(mt, keyframe_markers(mt, positions, stamp_ns, frame_id, scale)
                            + [candidate_marker(mt, candidates, stamp_ns, frame_id, 2 * scale)])


# --- diagnostics ----------------------------------------------------------------------------

OK, WARN, ERROR, STALE = 0, 1, 2, 3  # diagnostic_msgs/DiagnosticStatus levels


@dataclass
class DiagnosticReport:
    """One DiagnosticStatus: the node fills it from its counters, this module only encodes it."""

    name: str
    level: int
    message: str
    hardware_id: str = ""
    values: dict[str, Any] = field(default_factory=dict)


def diagnostics_msg(mt: MessageTypes, stamp_ns: int, reports: Iterable[DiagnosticReport]) -> Any:
    statuses = []
    for r in reports:
        if r.level not in (OK, WARN, ERROR, STALE):
            raise MessageBuildError(f"diagnostics {r.name!r}: level {r.level} is not OK/WARN/ERROR/STALE")
        values = [mt.new("diagnostic_msgs/msg/KeyValue", key=str(k), value=_diag_value(v))
                  for k, v in r.values.items()]
        statuses.append(mt.new("diagnostic_msgs/msg/DiagnosticStatus", level=mt.byte(r.level), name=r.name,
                               message=r.message, hardware_id=r.hardware_id, values=values))
    return mt.new(DIAGNOSTICS_TYPE, header=header_msg(mt, stamp_ns, ""), status=statuses)


def _diag_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
