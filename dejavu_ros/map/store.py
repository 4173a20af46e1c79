"""The keyframe map: one SQLite file per map (layout in :mod:`.tables`, journalling in :mod:`.sqlite_file`).

Building a map appends keyframes (each append is one transaction, so a crash never loses what
was committed); localizing opens it read-only and bulk-loads stacked arrays for the engine.
"""
from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from .arrays import stack_blobs
from .compatibility import check_compatible, read_meta
from .errors import InvalidKeyframeError, KeyframeNotFoundError, MapError
from .creation import write_empty_map
from .keyframe import Keyframe
from .sqlite_file import check_sqlite_file, connect
from .summary import map_counts, summarise
from .tables import (CREATE_INDEX_SQL, FEATURE_SETS, INSERT_DATA_SQL, INSERT_INDEX_SQL, SELECT_SQL,
                     keyframe_to_rows, row_to_keyframe)
from .validation import validate_keyframe

_ID_CHUNK = 500  # bound parameters per IN (...) query
_ITER_BATCH = 32  # keyframes per query while iterating (short reads never starve a writer)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class KeyframeMap:
    """A keyframe map file. Use :meth:`create` or :meth:`open`; close it (or use ``with``).

    Thread-safe: one connection guarded by a lock, so the ROS node may call it from any callback.
    """

    def __init__(self, path: Path, conn: sqlite3.Connection, read_only: bool, meta: dict[str, str]):
        self._path = path
        self._conn: sqlite3.Connection | None = conn
        self._read_only = read_only
        self._lock = threading.RLock()
        self._fingerprint = meta["model_fingerprint"]
        self._descriptor_dim = int(meta["descriptor_dim"])
        self._frame_id = meta["frame_id"]
        self._schema_version = int(meta["schema_version"])
        self._engine_config = json.loads(meta["engine_config"])
        self._created = meta["created"]

    # --- opening -----------------------------------------------------------------------------

    @classmethod
    def create(cls, path: str | os.PathLike, model_fingerprint: str, descriptor_dim: int,
               frame_id: str = "map", engine_config: dict | None = None,
               overwrite: bool = False) -> "KeyframeMap":
        """Make a new, empty map and return it open for appending (mode ``"rw"``).

        The file appears atomically (built under a temporary name, then renamed), so a crash
        during creation never leaves a half-made map behind.
        """
        path = write_empty_map(Path(path), model_fingerprint, descriptor_dim, frame_id, engine_config, overwrite,
                               _now())
        return cls.open(path, mode="rw")

    @classmethod
    def open(cls, path: str | os.PathLike, mode: str = "r", expected_fingerprint: str | None = None,
             expected_descriptor_dim: int | None = None,
             allow_model_mismatch: bool = False) -> "KeyframeMap":
        """Open an existing map. ``mode="r"`` is read-only at the SQLite level (``?mode=ro``).

        Raises :class:`MapError` for a file that is missing, empty, truncated or not a map, and
        :class:`MapMismatchError` when the map's schema is newer than this code, its descriptor
        size differs from ``expected_descriptor_dim``, or its model fingerprint differs from
        ``expected_fingerprint`` (the latter only warns with ``allow_model_mismatch=True``).
        """
        path = Path(path)
        if mode not in ("r", "rw"):
            raise MapError(f"{path}: open mode must be 'r' or 'rw', got {mode!r}")
        check_sqlite_file(path)
        conn = connect(path, read_only=(mode == "r"))
        try:
            meta = read_meta(conn, path)
            check_compatible(meta, path, expected_fingerprint, expected_descriptor_dim,
                              allow_model_mismatch)
        except BaseException:
            conn.close()
            raise
        return cls(path, conn, read_only=(mode == "r"), meta=meta)

    # --- properties ----------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self._path

    @property
    def read_only(self) -> bool:
        return self._read_only

    @property
    def model_fingerprint(self) -> str:
        return self._fingerprint

    @property
    def descriptor_dim(self) -> int:
        """Channels n of the dense features (grid) and of the sparse descriptors."""
        return self._descriptor_dim

    @property
    def global_descriptor_dim(self) -> int | None:
        """Length of the global descriptors; None until the first keyframe is appended."""
        value = self._meta_value("global_descriptor_dim")
        return None if value is None else int(value)

    @property
    def frame_id(self) -> str:
        return self._frame_id

    @property
    def schema_version(self) -> int:
        return self._schema_version

    @property
    def created(self) -> str:
        """When the map file was created (UTC, ISO 8601)."""
        return self._created

    @property
    def engine_config(self) -> dict:
        return dict(self._engine_config)

    @property
    def closed(self) -> bool:
        return self._conn is None

    # --- writing -------------------------------------------------------------------------------

    def append(self, kf: Keyframe) -> int:
        """Validate and store one keyframe in its own transaction; return its new id.

        ``kf.id`` is ignored (the map assigns ids, never reused). The orientation is stored
        re-normalised. Raises :class:`InvalidKeyframeError` naming the bad field.
        """
        return self.append_many([kf])[0]

    def append_many(self, keyframes: Iterable[Keyframe]) -> list[int]:
        """Store several keyframes in one transaction: all of them or, on any error, none."""
        self._require_writable()
        # Validate and encode before taking the write lock, so readers wait as little as possible.
        global_dim = self.global_descriptor_dim
        clean = []
        for kf in keyframes:
            clean.append(validate_keyframe(kf, self._descriptor_dim, global_dim, self._frame_id))
            global_dim = clean[-1].global_desc.size
        rows = [keyframe_to_rows(kf) for kf in clean]
        if not rows:
            return []
        with self._locked("append to"):
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                stored_dim = self._meta_value("global_descriptor_dim")  # another writer may have set it
                if stored_dim is None:
                    conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)",
                                 ("global_descriptor_dim", str(global_dim)))
                elif int(stored_dim) != global_dim:
                    raise InvalidKeyframeError(f"keyframe field 'global_desc': has {global_dim} values, "
                                               f"this map stores {stored_dim}")
                ids = []
                for (index_row, data_row), kf in zip(rows, clean):
                    ids.append(int(conn.execute(INSERT_INDEX_SQL, index_row).lastrowid))
                    conn.execute(INSERT_DATA_SQL, (ids[-1], *data_row))
                    for feature_set in FEATURE_SETS:
                        row = feature_set.row(kf)
                        if row is not None:
                            conn.execute(feature_set.create_sql)
                            conn.execute(feature_set.insert_sql, (ids[-1], *row))
                conn.execute("UPDATE meta SET value = ? WHERE key = ?", (_now(), "updated"))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return ids

    # --- reading -------------------------------------------------------------------------------

    def __len__(self) -> int:
        with self._locked("count"):
            return int(self._connection().execute("SELECT count(*) FROM keyframes").fetchone()[0])

    def __contains__(self, kf_id: object) -> bool:
        if isinstance(kf_id, bool) or not isinstance(kf_id, (int, np.integer)):
            return False
        with self._locked("read"):
            sql = "SELECT 1 FROM keyframes WHERE id = ?"
            return self._connection().execute(sql, (int(kf_id),)).fetchone() is not None

    def ids(self) -> list[int]:
        """Keyframe ids in ascending order."""
        with self._locked("list"):
            rows = self._connection().execute("SELECT id FROM keyframes ORDER BY id").fetchall()
        return [int(r[0]) for r in rows]

    def get(self, kf_id: int) -> Keyframe:
        """The full keyframe (arrays in their storage dtypes); :class:`KeyframeNotFoundError`."""
        with self._locked("read"):
            row = self._connection().execute(f"{SELECT_SQL} WHERE k.id = ?", (int(kf_id),)).fetchone()
            if row is None:
                raise KeyframeNotFoundError(f"{self._path}: no keyframe with id {kf_id}")
            kf = row_to_keyframe(row, str(self._path))
            self._read_feature_sets(kf)
            return kf

    def load_search_index(self, name: str = "faiss") -> tuple[int, bytes] | None:
        """(keyframes covered, serialised index) stored with the map, or None."""
        with self._locked("read the search index of"):
            conn = self._connection()
            if not self._has_table("search_index"):
                return None
            row = conn.execute("SELECT covers, data FROM search_index WHERE name = ?", (name,)).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def store_search_index(self, covers: int, data: bytes, name: str = "faiss") -> None:
        """Keep a shortlist index with the map (replacing the previous one), in one transaction."""
        self._require_writable()
        with self._locked("store the search index in"):
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(CREATE_INDEX_SQL)
                conn.execute("INSERT OR REPLACE INTO search_index (name, covers, data) VALUES (?, ?, ?)",
                             (name, int(covers), data))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def _read_feature_sets(self, kf: Keyframe, present=None) -> None:
        """Fill ``kf``'s optional feature sets (SIFT, head keypoints) from their tables, where the map has
        them (``present``: :meth:`_present_feature_sets`, when the caller looked them up already)."""
        conn = self._connection()
        for feature_set in self._present_feature_sets() if present is None else present:
            row = conn.execute(feature_set.select_sql, (int(kf.id),)).fetchone()
            if row is not None:
                feature_set.fill(kf, row, f"{self._path} keyframe {kf.id}")

    def _present_feature_sets(self) -> list:
        """The optional feature sets this map has a table for."""
        return [feature_set for feature_set in FEATURE_SETS if self._has_table(feature_set.table)]

    def _has_table(self, name: str) -> bool:
        found = self._connection().execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
        return found is not None

    def __iter__(self) -> Iterator[Keyframe]:
        """Every keyframe in id order, read in small batches (a writer may append meanwhile)."""
        last = -1
        while True:
            with self._locked("read"):
                rows = self._connection().execute(f"{SELECT_SQL} WHERE k.id > ? ORDER BY k.id LIMIT ?",
                                                  (last, _ITER_BATCH)).fetchall()
                batch = [row_to_keyframe(r, str(self._path)) for r in rows]
                present = self._present_feature_sets()  # looked up once per batch, not per keyframe
                for kf in batch:
                    self._read_feature_sets(kf, present)
            if not batch:
                return
            yield from batch
            last = batch[-1].id

    def load_global_descriptors(self) -> tuple[np.ndarray, np.ndarray]:
        """``(ids (N,) int64, descriptors (N, D) float32)`` in id order, for the shortlist."""
        with self._locked("load global descriptors from"):
            rows = self._connection().execute(
                "SELECT id, global_desc FROM keyframes ORDER BY id").fetchall()
        dim = self.global_descriptor_dim or 0
        return stack_blobs(rows, "global_desc", (dim,), np.float32, str(self._path))

    def load_grids(self, ids: Iterable[int] | None = None, dtype=np.float16) -> np.ndarray:
        """Stacked CX grids ``(K, n, h, w)`` for ``ids`` in the given order (None = all, id order).

        Grids are stored fp16; ``dtype`` converts on the way out. All requested grids must share
        one shape (true for keyframes from one camera and one grid size), else :class:`MapError`.
        """
        if ids is None:
            with self._locked("load grids from"):
                rows = self._connection().execute("SELECT id, grid FROM keyframe_data ORDER BY id").fetchall()
            return stack_blobs(rows, "grid", None, dtype, str(self._path))[1]
        wanted = [int(i) for i in ids]
        found: dict[int, bytes] = {}
        with self._locked("load grids from"):
            for start in range(0, len(wanted), _ID_CHUNK):
                chunk = sorted(set(wanted[start:start + _ID_CHUNK]))
                sql = f"SELECT id, grid FROM keyframe_data WHERE id IN ({', '.join('?' * len(chunk))})"
                found.update(self._connection().execute(sql, chunk).fetchall())
        missing = [i for i in wanted if i not in found]
        if missing:
            raise KeyframeNotFoundError(f"{self._path}: no keyframe with id(s) {missing[:10]}")
        return stack_blobs([(i, found[i]) for i in wanted], "grid", None, dtype, str(self._path))[1]

    def load_poses(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(ids (N,), positions (N, 3), orientations (N, 4) x y z w)`` in id order, float64."""
        with self._locked("load poses from"):
            rows = self._connection().execute(
                "SELECT id, px, py, pz, qx, qy, qz, qw FROM keyframes ORDER BY id").fetchall()
        table = np.array(rows, dtype=np.float64).reshape(len(rows), 8)
        return table[:, 0].astype(np.int64), table[:, 1:4].copy(), table[:, 4:8].copy()

    def load_traversals(self, ids) -> list:
        """Per keyframe of ``ids`` (in that order), the drive it was mapped in: ``extra["traversal"]``
        when the map recorded one, else its ``source`` (the bag or topic it came from). Taking the ids
        keeps it aligned with descriptors read earlier while another process extends the map."""
        with self._locked("load traversals from"):
            rows = self._connection().execute("SELECT id, extra, source FROM keyframes").fetchall()
        by_id = {}
        for kf_id, extra, source in rows:
            traversal = json.loads(extra).get("traversal") if extra else None
            by_id[int(kf_id)] = f"traversal {traversal}" if traversal is not None else f"source {source}"
        try:
            return [by_id[int(k)] for k in ids]
        except KeyError as exc:
            raise KeyframeNotFoundError(f"{self._path}: no keyframe with id {exc.args[0]}") from None

    def load_thumbnail(self, kf_id: int) -> bytes:
        """The keyframe's JPEG thumbnail (empty when none was stored)."""
        with self._locked("read"):
            row = self._connection().execute("SELECT thumbnail FROM keyframe_data WHERE id = ?",
                                             (int(kf_id),)).fetchone()
        if row is None:
            raise KeyframeNotFoundError(f"{self._path}: no keyframe with id {kf_id}")
        return bytes(row[0])

    def load_image_size(self, kf_id: int) -> tuple[int, int]:
        """(width, height) of the image the keyframe's pixel coordinates refer to (no blobs read)."""
        with self._locked("read"):
            row = self._connection().execute("SELECT image_width, image_height FROM keyframes WHERE id = ?",
                                             (int(kf_id),)).fetchone()
        if row is None:
            raise KeyframeNotFoundError(f"{self._path}: no keyframe with id {kf_id}")
        return int(row[0]), int(row[1])

    # --- checks and summary ----------------------------------------------------------------------

    def integrity_check(self, max_errors: int = 10) -> str:
        """``"ok"`` or SQLite's description of the damage (``PRAGMA integrity_check``)."""
        try:
            with self._lock:
                rows = self._connection().execute(f"PRAGMA integrity_check({int(max_errors)})").fetchall()
        except sqlite3.DatabaseError as exc:
            return f"unreadable: {exc}"
        problems = [str(r[0]) for r in rows]
        return "ok" if problems == ["ok"] else "; ".join(problems)

    def info(self, check_integrity: bool = True) -> dict:
        """Summary for ``map-info`` (plain JSON-able types; :mod:`.summary`)."""
        with self._locked("summarise"):
            counts = map_counts(self._connection())
            updated = self._meta_value("updated")
        return summarise(self, counts, updated, self.integrity_check() if check_integrity else "not checked")

    # --- lifetime ------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> "KeyframeMap":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("r" if self._read_only else "rw")
        return f"KeyframeMap({str(self._path)!r}, {state})"

    # --- internals -----------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise MapError(f"{self._path}: map is closed")
        return self._conn

    def _require_writable(self) -> None:
        if self._read_only:
            raise MapError(f"{self._path}: map is open read-only (mode 'r'); open it with mode 'rw' "
                           f"to append keyframes")

    @contextlib.contextmanager
    def _locked(self, action: str):
        """Hold the lock and turn SQLite failures into a :class:`MapError` naming the file."""
        with self._lock:
            try:
                yield
            except sqlite3.Error as exc:
                raise MapError(f"{self._path}: cannot {action} the map ({exc})") from None

    def _meta_value(self, key: str) -> str | None:
        with self._locked("read the meta table of"):
            row = self._connection().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]
