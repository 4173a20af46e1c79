"""The map's SQL layout and the conversion between :class:`Keyframe` and table rows.

Layout (schema version 1):

* ``meta(key, value)``: schema_version, model_fingerprint, descriptor_dim, global_descriptor_dim
  (set by the first append), engine_config (JSON), frame_id, created, updated (ISO 8601 UTC).
* ``keyframes``: one row per keyframe. Scalars (stamp, pose, image size) are plain columns so
  poses load without touching the arrays; arrays are BLOBs written by :mod:`.arrays`. Small
  columns come first and the large blobs last, so reading a pose or a global descriptor does not
  walk the overflow pages of the grid or the thumbnail.

``PRAGMA application_id`` marks the file as a dejavu_ros map.
"""
from __future__ import annotations

import json

import numpy as np

from .arrays import decode_array, decode_optional, encode_array
from .keyframe import Keyframe

SCHEMA_VERSION = 1
APPLICATION_ID = 0x444A5655  # "DJVU"
REQUIRED_META = ("schema_version", "model_fingerprint", "descriptor_dim", "engine_config", "frame_id",
                 "created", "updated")

CREATE_STATEMENTS = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) WITHOUT ROWID",
    """CREATE TABLE keyframes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        stamp REAL NOT NULL,
        frame_id TEXT NOT NULL,
        source TEXT NOT NULL,
        px REAL NOT NULL, py REAL NOT NULL, pz REAL NOT NULL,
        qx REAL NOT NULL, qy REAL NOT NULL, qz REAL NOT NULL, qw REAL NOT NULL,
        image_width INTEGER NOT NULL, image_height INTEGER NOT NULL,
        extra TEXT NOT NULL,
        covariance BLOB, camera_k BLOB,
        global_desc BLOB NOT NULL,
        grid BLOB NOT NULL,
        keypoints BLOB NOT NULL, descriptors BLOB NOT NULL, points3d BLOB,
        thumbnail BLOB NOT NULL)""",
)

#: Storage dtype of each array field (fp16 for the dense grid and the sparse descriptors).
ARRAY_DTYPES = {"covariance": "<f8", "camera_k": "<f8", "global_desc": "<f4", "grid": "<f2",
                "keypoints": "<f4", "descriptors": "<f2", "points3d": "<f4"}

_SCALARS = ("stamp", "frame_id", "source", "px", "py", "pz", "qx", "qy", "qz", "qw", "image_width",
            "image_height", "extra")
_BLOBS = ("covariance", "camera_k", "global_desc", "grid", "keypoints", "descriptors", "points3d",
          "thumbnail")
COLUMNS = _SCALARS + _BLOBS
INSERT_SQL = (f"INSERT INTO keyframes ({', '.join(COLUMNS)}) "
              f"VALUES ({', '.join('?' for _ in COLUMNS)})")
SELECT_SQL = f"SELECT id, {', '.join(COLUMNS)} FROM keyframes"



def keyframe_to_row(kf: Keyframe) -> tuple:
    """Bound parameters for :data:`INSERT_SQL`; ``kf`` must already be validated."""
    arrays = {name: None if getattr(kf, name) is None else encode_array(getattr(kf, name), dt)
              for name, dt in ARRAY_DTYPES.items()}
    p, q = kf.position, kf.orientation
    return (kf.stamp, kf.frame_id, kf.source, float(p[0]), float(p[1]), float(p[2]), float(q[0]),
            float(q[1]), float(q[2]), float(q[3]), int(kf.image_size[0]), int(kf.image_size[1]),
            json.dumps(kf.extra), arrays["covariance"], arrays["camera_k"], arrays["global_desc"],
            arrays["grid"], arrays["keypoints"], arrays["descriptors"], arrays["points3d"],
            bytes(kf.thumbnail))


def row_to_keyframe(row: tuple, where: str) -> Keyframe:
    """Inverse of :func:`keyframe_to_row` for a ``SELECT_SQL`` row (id first)."""
    (kf_id, stamp, frame_id, source, px, py, pz, qx, qy, qz, qw, width, height, extra,
     covariance, camera_k, global_desc, grid, keypoints, descriptors, points3d, thumbnail) = row
    what = f"{where} keyframe {kf_id}"
    return Keyframe(
        id=int(kf_id), stamp=float(stamp), frame_id=frame_id, source=source,
        position=np.array([px, py, pz], dtype=np.float64),
        orientation=np.array([qx, qy, qz, qw], dtype=np.float64),
        image_size=(int(width), int(height)), extra=json.loads(extra),
        covariance=decode_optional(covariance, f"{what} covariance"),
        camera_k=decode_optional(camera_k, f"{what} camera_k"),
        global_desc=decode_array(global_desc, f"{what} global_desc"),
        grid=decode_array(grid, f"{what} grid"),
        keypoints=decode_array(keypoints, f"{what} keypoints"),
        descriptors=decode_array(descriptors, f"{what} descriptors"),
        points3d=decode_optional(points3d, f"{what} points3d"),
        thumbnail=bytes(thumbnail))
