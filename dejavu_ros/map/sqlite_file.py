"""Opening the SQLite file behind a map, with clear refusals for files that are not maps.

Journal mode: the classic rollback journal (``journal_mode=DELETE``, ``synchronous=FULL``), not
WAL. A map is then always one self-contained file that can be copied or shipped between
transactions, and read-only opening needs no ``-wal``/``-shm`` side files (a map installed in a
read-only share folder still opens). Readers and the writer serialise through SQLite's file
locks and a busy timeout; keyframes arrive at about one per second, so WAL's extra concurrency
buys nothing here. A process killed mid-append leaves a hot ``-journal`` next to the map; the next
opener rolls it back, which restores exactly the last committed state.
"""
from __future__ import annotations

import os
import sqlite3
import struct
from pathlib import Path

from .errors import MapError

SQLITE_MAGIC = b"SQLite format 3\x00"
#: Seconds a connection waits for another process's lock before giving up.
BUSY_TIMEOUT_S = 30.0


def journal_path(path: Path) -> Path:
    return path.with_name(path.name + "-journal")


def check_sqlite_file(path: Path) -> None:
    """Refuse missing, empty, non-SQLite and truncated files before SQLite sees them."""
    if not path.exists():
        raise MapError(f"map file not found: {path}")
    if not path.is_file():
        raise MapError(f"{path}: not a regular file (is it a directory?)")
    try:
        with open(path, "rb") as fh:
            header = fh.read(100)
    except OSError as exc:
        raise MapError(f"{path}: cannot read the map file ({exc.strerror})") from None
    size = path.stat().st_size  # after the header: a concurrent commit only grows the file
    if size == 0:
        raise MapError(f"{path}: empty file (0 bytes), not a keyframe map")
    if not header.startswith(SQLITE_MAGIC):
        raise MapError(f"{path}: not a keyframe map (not an SQLite database)")
    if len(header) < 100:
        raise MapError(f"{path}: truncated SQLite file ({size} bytes, shorter than its header)")
    page_size = struct.unpack(">H", header[16:18])[0]
    page_size = 65536 if page_size == 1 else page_size
    change_counter, page_count = struct.unpack(">II", header[24:32])
    valid_for = struct.unpack(">I", header[92:96])[0]
    if journal_path(path).exists():  # a write in progress or a crash: SQLite knows better than the header
        return
    if page_count and change_counter == valid_for and size < page_count * page_size:
        raise MapError(f"{path}: truncated map file ({size} bytes, its header says "
                       f"{page_count * page_size}); restore it from a copy or rebuild it")


def _uri(path: Path, read_only: bool) -> str:
    return path.resolve().as_uri() + ("?mode=ro" if read_only else "?mode=rw")


def connect(path: Path, read_only: bool, create: bool = False,
            _recovered: bool = False) -> sqlite3.Connection:
    """An autocommit connection (transactions are explicit) with the map's pragmas set."""
    try:
        if create:
            conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                   check_same_thread=False)
        else:
            conn = sqlite3.connect(_uri(path, read_only), uri=True, timeout=BUSY_TIMEOUT_S,
                                   isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise MapError(f"{path}: cannot open the map ({exc})") from None
    try:
        if not read_only:
            conn.execute("PRAGMA journal_mode=DELETE")
            conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # reads page 1, replays a hot journal
    except sqlite3.Error as exc:
        conn.close()
        if read_only and not _recovered and _needs_rollback(exc):
            recover_hot_journal(path)
            return connect(path, read_only=True, _recovered=True)
        raise MapError(f"{path}: not a readable keyframe map ({exc})") from None
    return conn


def _needs_rollback(exc: sqlite3.Error) -> bool:
    name = getattr(exc, "sqlite_errorname", "")
    return name == "SQLITE_READONLY_ROLLBACK" or "readonly" in str(exc).lower()


def recover_hot_journal(path: Path) -> None:
    """Roll back an interrupted write (a crash mid-append) so read-only openers can read the map.

    Rolling back restores the last committed state; nothing committed is lost or changed.
    """
    try:
        conn = sqlite3.connect(_uri(path, read_only=False), uri=True, timeout=BUSY_TIMEOUT_S,
                               isolation_level=None)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise MapError(f"{path}: has an interrupted write ({journal_path(path).name}) that needs write "
                       f"access to roll back ({exc}); open it once in mode 'rw'") from None


def move_no_clobber(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst`` unless ``dst`` exists (FileExistsError), even if made meanwhile."""
    try:
        os.link(src, dst)  # atomic: fails if another process created dst after our check
    except FileExistsError:
        raise
    except OSError:  # a filesystem without hard links
        if dst.exists():
            raise FileExistsError(dst) from None
        os.replace(src, dst)
        return
    src.unlink()
