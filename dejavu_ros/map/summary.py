"""What ``dejavu-ros map-info`` reports about a map file."""
from __future__ import annotations

import sqlite3


def map_counts(conn: sqlite3.Connection) -> dict:
    """Keyframe count, position bounds and how many keyframes carry intrinsics and 3-D points (the
    caller holds the map's lock, so the four queries see one state)."""
    return {
        "keyframes": conn.execute("SELECT count(*) FROM keyframes").fetchone()[0],
        "bounds": conn.execute("SELECT min(px), min(py), min(pz), max(px), max(py), max(pz) FROM keyframes").fetchone(),
        "with_camera": conn.execute("SELECT count(*) FROM keyframes WHERE camera_k IS NOT NULL").fetchone()[0],
        "with_points": conn.execute("SELECT count(*) FROM keyframe_data WHERE points3d IS NOT NULL").fetchone()[0],
    }


def summarise(kmap, counts: dict, updated: str | None, integrity: str) -> dict:
    """The summary of ``kmap`` (a :class:`~dejavu_ros.map.store.KeyframeMap`) in plain JSON-able types."""
    count, bounds = counts["keyframes"], counts["bounds"]
    size = kmap.path.stat().st_size
    return {
        "path": str(kmap.path),
        "keyframes": count,
        "frame_id": kmap.frame_id,
        "model_fingerprint": kmap.model_fingerprint,
        "schema_version": kmap.schema_version,
        "descriptor_dim": kmap.descriptor_dim,
        "global_descriptor_dim": kmap.global_descriptor_dim,
        "engine_config": kmap.engine_config,
        "created": kmap.created,
        "updated": updated,
        "bbox": None if count == 0 else {"min": list(bounds[:3]), "max": list(bounds[3:])},
        "keyframes_with_intrinsics": counts["with_camera"],
        "keyframes_with_3d_points": counts["with_points"],
        "integrity": integrity,
        "file_size_bytes": size,
        "bytes_per_keyframe": round(size / count, 1) if count else None,
    }
