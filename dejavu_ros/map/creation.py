"""A new, empty map file, made atomically: built under a temporary name, then renamed into place,
so a crash during creation never leaves a half-made map (or a damaged one where a map was)."""
from __future__ import annotations

import json
import os
import re
import sqlite3
from pathlib import Path

import numpy as np

from .errors import MapError
from .sqlite_file import connect, journal_path, move_no_clobber
from .tables import APPLICATION_ID, CREATE_STATEMENTS, SCHEMA_VERSION

_HEX = re.compile(r"^[0-9a-fA-F]+$")


def write_empty_map(path: Path, model_fingerprint: str, descriptor_dim: int, frame_id: str,
                    engine_config: dict | None, overwrite: bool, stamp: str) -> Path:
    """Check the map's identity (model fingerprint, descriptor size, frame, engine config) and write
    the empty file at ``path``; :class:`MapError` naming the problem otherwise. ``stamp``: the
    creation time recorded in the map."""
    if not isinstance(model_fingerprint, str) or not _HEX.match(model_fingerprint):
        raise MapError(f"{path}: model fingerprint must be a non-empty hex string, got "
                       f"{model_fingerprint!r}")
    if isinstance(descriptor_dim, bool) or not isinstance(descriptor_dim, (int, np.integer)) \
            or descriptor_dim < 1:
        raise MapError(f"{path}: descriptor_dim must be a positive integer, got {descriptor_dim!r}")
    if not isinstance(frame_id, str) or not frame_id:
        raise MapError(f"{path}: frame_id must be a non-empty string")
    try:
        config_json = json.dumps(engine_config or {}, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise MapError(f"{path}: engine_config is not JSON-serialisable ({exc})") from None
    if path.exists() and not overwrite:
        raise MapError(f"{path}: file exists; refusing to overwrite it (pass overwrite=True)")
    if not path.parent.is_dir():
        raise MapError(f"{path}: folder {path.parent} does not exist")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    meta = {"schema_version": str(SCHEMA_VERSION), "model_fingerprint": model_fingerprint.lower(),
            "descriptor_dim": str(int(descriptor_dim)), "engine_config": config_json,
            "frame_id": frame_id, "created": stamp, "updated": stamp}
    try:
        conn = connect(tmp, read_only=False, create=True)
        try:
            conn.execute(f"PRAGMA application_id={APPLICATION_ID:d}")
            conn.execute("BEGIN")
            for statement in CREATE_STATEMENTS:
                conn.execute(statement)
            conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", meta.items())
            conn.execute("COMMIT")
        finally:
            conn.close()
        if overwrite:
            os.replace(tmp, path)
            journal_path(path).unlink(missing_ok=True)  # a stale journal of the replaced file
        else:
            move_no_clobber(tmp, path)
    except FileExistsError:
        tmp.unlink(missing_ok=True)
        raise MapError(f"{path}: file exists; refusing to overwrite it (pass overwrite=True)") from None
    except (sqlite3.Error, OSError) as exc:
        tmp.unlink(missing_ok=True)
        raise MapError(f"{path}: cannot create the map ({exc})") from None
    return path
