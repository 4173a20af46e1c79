"""Checks a keyframe before it is written: a bad row in a map would poison every later search."""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np

from ..geometry import pose_problem
from .errors import InvalidKeyframeError
from .keyframe import Keyframe

_JPEG_MAGIC = b"\xff\xd8"


def _fail(field: str, problem: str) -> InvalidKeyframeError:
    return InvalidKeyframeError(f"keyframe field '{field}': {problem}")


def _array(value, field: str, shape: tuple, dtype, finite: bool = True) -> np.ndarray:
    """``value`` as an array of ``dtype`` whose shape matches ``shape`` (None = any size)."""
    try:
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise _fail(field, f"not a numeric array ({exc})") from None
    if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
        want = "×".join("N" if s is None else str(s) for s in shape)
        raise _fail(field, f"expected shape {want}, got {'×'.join(map(str, arr.shape)) or 'scalar'}")
    if finite and not np.all(np.isfinite(arr)):
        raise _fail(field, "contains NaN or Inf")
    return arr


def unit_quaternion(q, field: str = "orientation") -> np.ndarray:
    """Quaternion (x, y, z, w) normalised; :class:`InvalidKeyframeError` when far from unit."""
    q = _array(q, field, (4,), np.float64)
    problem = pose_problem(np.zeros(3), q)
    if problem is not None:
        raise _fail(field, problem)
    return q / np.linalg.norm(q)


def validate_keyframe(kf: Keyframe, descriptor_dim: int, global_dim: int | None,
                      frame_id: str) -> Keyframe:
    """A cleaned copy of ``kf`` with arrays in their storage dtypes; raise on the first bad field.

    ``global_dim`` is the map's global-descriptor length (None while the map is empty);
    ``frame_id`` is the map frame every keyframe pose must be expressed in.
    """
    if not isinstance(kf, Keyframe):
        raise InvalidKeyframeError(f"expected a Keyframe, got {type(kf).__name__}")
    try:
        stamp = float(kf.stamp)
    except (TypeError, ValueError):
        raise _fail("stamp", f"not a number ({kf.stamp!r})") from None
    if not math.isfinite(stamp):
        raise _fail("stamp", "is NaN or Inf")
    position = _array(kf.position, "position", (3,), np.float64)
    orientation = unit_quaternion(kf.orientation)
    covariance = None
    if kf.covariance is not None:
        covariance = _array(kf.covariance, "covariance", (6, 6), np.float64)

    global_desc = _array(kf.global_desc, "global_desc", (None,), np.float32)
    if global_desc.size == 0:
        raise _fail("global_desc", "is empty")
    if global_dim is not None and global_desc.size != global_dim:
        raise _fail("global_desc", f"has {global_desc.size} values, this map stores {global_dim}")
    grid = _array(kf.grid, "grid", (None, None, None), np.float16)
    if grid.shape[0] != descriptor_dim:
        raise _fail("grid", f"has {grid.shape[0]} descriptor channels, the map's descriptor_dim is "
                            f"{descriptor_dim}")
    if grid.shape[1] == 0 or grid.shape[2] == 0:
        raise _fail("grid", "is empty")
    keypoints, descriptors, points3d = _keypoint_set(kf.keypoints, kf.descriptors, kf.points3d, "",
                                                     descriptor_dim)
    head = (None, None, None)
    if (kf.head_keypoints is None) != (kf.head_descriptors is None):
        raise _fail("head_keypoints", "head keypoints and descriptors come together")
    if kf.head_keypoints is not None:
        head = _keypoint_set(kf.head_keypoints, kf.head_descriptors, kf.head_points3d, "head_", descriptor_dim)
    camera_k = None
    if kf.camera_k is not None:
        camera_k = _array(kf.camera_k, "camera_k", (3, 3), np.float64)

    try:
        width, height = (int(v) for v in kf.image_size)
    except (TypeError, ValueError):
        raise _fail("image_size", f"expected (width, height), got {kf.image_size!r}") from None
    if width <= 0 or height <= 0:
        raise _fail("image_size", f"must be positive, got {(width, height)}")
    thumbnail = bytes(kf.thumbnail or b"")
    if thumbnail and not thumbnail.startswith(_JPEG_MAGIC):
        raise _fail("thumbnail", "is not JPEG data")
    if not isinstance(kf.source, str):
        raise _fail("source", f"expected a string, got {type(kf.source).__name__}")
    kf_frame = kf.frame_id or frame_id
    if kf_frame != frame_id:
        raise _fail("frame_id", f"'{kf_frame}' differs from the map frame '{frame_id}'")
    try:
        json.dumps(kf.extra)
    except (TypeError, ValueError) as exc:
        raise _fail("extra", f"not JSON-serialisable ({exc})") from None
    sift_xy = sift_desc = None
    if (kf.sift_keypoints is None) != (kf.sift_descriptors is None):
        raise _fail("sift_keypoints", "SIFT keypoints and descriptors come together")
    if kf.sift_keypoints is not None:
        sift_xy = _array(kf.sift_keypoints, "sift_keypoints", (None, 2), np.float32)
        sift_desc = _array(kf.sift_descriptors, "sift_descriptors", (len(sift_xy), 128), np.uint8)

    return dataclasses.replace(
        kf, stamp=stamp, position=position, orientation=orientation, covariance=covariance,
        global_desc=global_desc, grid=grid, keypoints=keypoints, descriptors=descriptors,
        points3d=points3d, camera_k=camera_k, image_size=(width, height), thumbnail=thumbnail,
        frame_id=kf_frame, id=None, extra=dict(kf.extra), sift_keypoints=sift_xy, sift_descriptors=sift_desc,
        head_keypoints=head[0], head_descriptors=head[1], head_points3d=head[2])


def _keypoint_set(xy, desc, points, prefix: str, descriptor_dim: int):
    """(keypoints, descriptors, points3d) of one keypoint set checked against each other and the map."""
    keypoints = _array(xy, f"{prefix}keypoints", (None, 2), np.float32)
    count = keypoints.shape[0]
    descriptors = _array(desc, f"{prefix}descriptors", (None, None), np.float16)
    if descriptors.shape[1] != descriptor_dim:
        raise _fail(f"{prefix}descriptors", f"have dimension {descriptors.shape[1]}, the map's descriptor_dim "
                                            f"is {descriptor_dim}")
    if descriptors.shape[0] != count:
        raise _fail(f"{prefix}descriptors", f"{descriptors.shape[0]} rows for {count} keypoints")
    points3d = None
    if points is not None:  # NaN marks a corner without depth
        points3d = _array(points, f"{prefix}points3d", (count, 3), np.float32, finite=False)
        if np.any(np.isinf(points3d)):
            raise _fail(f"{prefix}points3d", "contains Inf (use NaN for unknown depth)")
    return keypoints, descriptors, points3d
