"""Is a file a keyframe map this code can read, built for the model in use?"""
from __future__ import annotations

import json
import sqlite3
import warnings
from pathlib import Path

from .errors import MapError, MapMismatchError, MapMismatchWarning
from .tables import APPLICATION_ID, REQUIRED_META, SCHEMA_VERSION, TABLES


def read_meta(conn: sqlite3.Connection, path: Path) -> dict[str, str]:
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables.issuperset(TABLES):
            raise MapError(f"{path}: an SQLite database but not a keyframe map (lacks the "
                           f"{', '.join(sorted(set(TABLES) - tables))} table(s))")
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.DatabaseError as exc:
        raise MapError(f"{path}: damaged or not a keyframe map ({exc})") from None
    if app_id != APPLICATION_ID:
        raise MapError(f"{path}: an SQLite database but not a keyframe map (application_id {app_id})")
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise MapError(f"{path}: damaged keyframe map, meta table lacks {', '.join(missing)}")
    try:
        int(meta["schema_version"]), int(meta["descriptor_dim"]), json.loads(meta["engine_config"])
    except ValueError as exc:
        raise MapError(f"{path}: damaged keyframe map, bad meta value ({exc})") from None
    return meta


def check_compatible(meta: dict[str, str], path: Path, expected_fingerprint: str | None,
                      expected_descriptor_dim: int | None, allow_model_mismatch: bool) -> None:
    version = int(meta["schema_version"])
    if version > SCHEMA_VERSION:
        raise MapMismatchError(f"{path}: map schema version {version} is newer than this dejavu_ros "
                               f"reads (version {SCHEMA_VERSION}); update dejavu_ros")
    if version < 1:
        raise MapError(f"{path}: damaged keyframe map, schema version {version}")
    dim = int(meta["descriptor_dim"])
    if expected_descriptor_dim is not None and dim != int(expected_descriptor_dim):
        raise MapMismatchError(f"{path}: map stores {dim}-dimensional descriptors, the model produces "
                               f"{int(expected_descriptor_dim)}-dimensional ones; rebuild the map")
    stored = meta["model_fingerprint"]
    if expected_fingerprint is not None and stored.lower() != str(expected_fingerprint).lower():
        message = (f"{path}: map was built with model fingerprint {stored}, the loaded model has "
                   f"fingerprint {expected_fingerprint}")
        if not allow_model_mismatch:
            raise MapMismatchError(message + "; rebuild the map with this model, or allow the mismatch "
                                   "(--allow-model-mismatch on the command line, parameter "
                                   "node.allow_model_mismatch for the node) and accept degraded results")
        warnings.warn(message + "; continuing because allow_model_mismatch is set", MapMismatchWarning,
                      stacklevel=3)
