"""The map's SQL layout and the conversion between :class:`Keyframe` and table rows.

Layout (schema version 1):

* ``meta(key, value)``: schema_version, model_fingerprint, descriptor_dim, global_descriptor_dim
  (set by the first append), engine_config (JSON), frame_id, created, updated (ISO 8601 UTC).
* ``keyframes``: one small row per keyframe (stamp, frame, source, pose as plain columns,
  covariance, intrinsics, global descriptor). Everything the engine loads at start-up for the
  whole map (poses, global descriptors) lives here, so a cold start reads a few MB per 10k
  keyframes instead of every page of the file.
* ``keyframe_data``: the bulky per-keyframe arrays (CX grid first, then corners, descriptors,
  3-D points, thumbnail), same id, read only for the shortlist or one keyframe at a time.
* ``search_index`` (optional): a serialised FAISS shortlist index of large maps, with the number of
  keyframes (in id order) it covers.
* optional feature sets, each in its own table created with the first keyframe that has it, same
  id (:data:`FEATURE_SETS`): ``keyframe_sift`` (SIFT keypoints and descriptors) and
  ``keyframe_head`` (the keypoint head's keypoints, their DVF descriptors and 3-D points), stored
  when the map is built for a ``matching.method`` or ``matching.refine`` that uses them. Maps
  without them read as before; readers that predate them ignore them.

Arrays are BLOBs written by :mod:`.arrays` (raw bytes + dtype/shape header, never pickle).
``PRAGMA application_id`` marks the file as a dejavu_ros map.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

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
        global_desc BLOB NOT NULL)""",
    """CREATE TABLE keyframe_data (
        id INTEGER PRIMARY KEY REFERENCES keyframes (id) ON DELETE CASCADE,
        grid BLOB NOT NULL,
        keypoints BLOB NOT NULL, descriptors BLOB NOT NULL, points3d BLOB,
        thumbnail BLOB NOT NULL)""",
)

#: Storage dtype of each array field (fp16 for the dense grid and the sparse descriptors).
ARRAY_DTYPES = {"covariance": "<f8", "camera_k": "<f8", "global_desc": "<f4", "grid": "<f2",
                "keypoints": "<f4", "descriptors": "<f2", "points3d": "<f4"}


@dataclass(frozen=True)
class FeatureSet:
    """An optional per-keyframe feature set in its own table: Keyframe fields, their storage dtypes and
    the table's statements (literal SQL: names are never spliced in); the first field is required
    (it says whether the keyframe has the set)."""

    table: str
    fields: tuple[str, ...]
    dtypes: tuple[str, ...]
    create_sql: str
    insert_sql: str
    select_sql: str

    def row(self, kf: Keyframe) -> tuple | None:
        """Bound parameters (less the id) of :attr:`insert_sql`, or None when ``kf`` lacks the set."""
        if getattr(kf, self.fields[0]) is None:
            return None
        return tuple(None if getattr(kf, f) is None else encode_array(getattr(kf, f), dt)
                     for f, dt in zip(self.fields, self.dtypes))

    def fill(self, kf: Keyframe, row: tuple, where: str) -> None:
        """Set ``kf``'s fields from a :attr:`select_sql` row."""
        for f, blob in zip(self.fields, row):
            setattr(kf, f, decode_optional(blob, f"{where} {f}"))


FEATURE_SETS = (
    FeatureSet("keyframe_sift", ("sift_keypoints", "sift_descriptors"), ("<f4", "|u1"),
               "CREATE TABLE IF NOT EXISTS keyframe_sift (id INTEGER PRIMARY KEY REFERENCES keyframes (id) "
               "ON DELETE CASCADE, keypoints BLOB NOT NULL, descriptors BLOB NOT NULL)",
               "INSERT INTO keyframe_sift (id, keypoints, descriptors) VALUES (?, ?, ?)",
               "SELECT keypoints, descriptors FROM keyframe_sift WHERE id = ?"),
    FeatureSet("keyframe_head", ("head_keypoints", "head_descriptors", "head_points3d"), ("<f4", "<f2", "<f4"),
               "CREATE TABLE IF NOT EXISTS keyframe_head (id INTEGER PRIMARY KEY REFERENCES keyframes (id) "
               "ON DELETE CASCADE, keypoints BLOB NOT NULL, descriptors BLOB NOT NULL, points3d BLOB)",
               "INSERT INTO keyframe_head (id, keypoints, descriptors, points3d) VALUES (?, ?, ?, ?)",
               "SELECT keypoints, descriptors, points3d FROM keyframe_head WHERE id = ?"),
)

TABLES = ("meta", "keyframes", "keyframe_data")
CREATE_INDEX_SQL = ("CREATE TABLE IF NOT EXISTS search_index (name TEXT PRIMARY KEY NOT NULL, "
                    "covers INTEGER NOT NULL, data BLOB NOT NULL)")
_INDEX_COLUMNS = ("stamp", "frame_id", "source", "px", "py", "pz", "qx", "qy", "qz", "qw", "image_width",
                  "image_height", "extra", "covariance", "camera_k", "global_desc")
_DATA_COLUMNS = ("grid", "keypoints", "descriptors", "points3d", "thumbnail")
INSERT_INDEX_SQL = (f"INSERT INTO keyframes ({', '.join(_INDEX_COLUMNS)}) "
                    f"VALUES ({', '.join('?' for _ in _INDEX_COLUMNS)})")
INSERT_DATA_SQL = (f"INSERT INTO keyframe_data (id, {', '.join(_DATA_COLUMNS)}) "
                   f"VALUES (?, {', '.join('?' for _ in _DATA_COLUMNS)})")
#: Full keyframe rows; append ``WHERE k.id ...``.
SELECT_SQL = (f"SELECT k.id, {', '.join('k.' + c for c in _INDEX_COLUMNS)}, "
              f"{', '.join('d.' + c for c in _DATA_COLUMNS)} "
              f"FROM keyframes AS k JOIN keyframe_data AS d ON d.id = k.id")



def keyframe_to_rows(kf: Keyframe) -> tuple[tuple, tuple]:
    """Bound parameters for :data:`INSERT_INDEX_SQL` and (less the id) :data:`INSERT_DATA_SQL`.

    ``kf`` must already be validated.
    """
    arrays = {name: None if getattr(kf, name) is None else encode_array(getattr(kf, name), dt)
              for name, dt in ARRAY_DTYPES.items()}
    p, q = kf.position, kf.orientation
    return (kf.stamp, kf.frame_id, kf.source, float(p[0]), float(p[1]), float(p[2]), float(q[0]),
            float(q[1]), float(q[2]), float(q[3]), int(kf.image_size[0]), int(kf.image_size[1]),
            json.dumps(kf.extra), arrays["covariance"], arrays["camera_k"], arrays["global_desc"]), \
        (arrays["grid"], arrays["keypoints"], arrays["descriptors"], arrays["points3d"], bytes(kf.thumbnail))


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
