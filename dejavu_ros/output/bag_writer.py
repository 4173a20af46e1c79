"""Write rosbag2 bags (mcap by default, sqlite3 on request) with rosbags and the shared typestore.

Bag-level facts (RobotCar run, condition tags, frame origin) go into the rosbag2 metadata's
``custom_data`` mapping (metadata.yaml), which ``ros2 bag info`` shows and
:func:`dejavu_ros.io.bag_reader.read_custom_data` returns. Messages are serialised and handed
to the storage one at a time; the writer keeps no message history (the MCAP storage buffers at
most one ~1 MiB chunk).
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import StoragePlugin, Writer

from ..io.errors import BagError
from ..io.typestore import typestore

STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
#: rosbag2 metadata version 8 is the newest one that ROS 2 Humble's rosbag2 still parses
BAG_VERSION = 8
_SUFFIX_STORAGE = {".mcap": "mcap", ".db3": "sqlite3"}


def _qos(latched: bool) -> list[Qos]:
    """Offered QoS recorded with a topic; latched = transient-local, as /tf_static is published."""
    zero = QosTime(0, 0)
    return [Qos(QosHistory.KEEP_LAST, 1 if latched else 10, QosReliability.RELIABLE,
                QosDurability.TRANSIENT_LOCAL if latched else QosDurability.VOLATILE,
                zero, zero, QosLiveliness.AUTOMATIC, zero, False)]


def bag_path_and_storage(out: str | Path, storage: str | None = None) -> tuple[Path, str]:
    """rosbag2 bags are directories; ``run.mcap`` / ``run.db3`` mean directory ``run`` with that storage."""
    out = Path(out)
    implied = _SUFFIX_STORAGE.get(out.suffix)
    if implied:
        if storage and storage != implied:
            raise BagError(f"output {out} implies storage {implied!r} but {storage!r} was requested")
        return out.with_suffix(""), implied
    return out, storage or "mcap"


class BagWriter:
    """``add_topic(name, msgtype)`` then ``write(topic, stamp_ns, msg)``; use as a context manager.

    ``path`` names the bag folder (rosbag2's convention); ``run.mcap`` means folder ``run`` in mcap
    storage (:func:`bag_path_and_storage`), so every command names its bags the same way.
    """

    def __init__(self, path: str | Path, storage: str | None = None, *, compress: bool = False,
                 overwrite: bool = False):
        self.path, storage = bag_path_and_storage(path, storage)
        if storage not in STORAGES:
            raise BagError(f"unknown bag storage {storage!r} (expected one of {sorted(STORAGES)})")
        if self.path.exists():
            if not overwrite:
                raise BagError(f"output bag {self.path} already exists; nothing was overwritten "
                               "(choose another name or remove it)")
            remove_bag(self.path)
        self.storage = storage
        self._writer = Writer(self.path, version=BAG_VERSION, storage_plugin=STORAGES[storage])
        if compress:
            from rosbags.rosbag2 import CompressionFormat, CompressionMode

            mode = CompressionMode.STORAGE if storage == "mcap" else CompressionMode.MESSAGE
            self._writer.set_compression(mode, CompressionFormat.ZSTD)
        self._connections: dict[str, tuple[Any, str]] = {}
        self.counts: dict[str, int] = {}
        self._open = False

    def open(self) -> "BagWriter":
        try:
            self._writer.open()
        except Exception as exc:  # noqa: BLE001
            raise BagError(f"cannot create bag {self.path}: {exc}") from None
        self._open = True
        return self

    def __enter__(self) -> "BagWriter":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Write the index and metadata.yaml (also after an error, so what was written stays readable)."""
        if self._open:
            self._open = False
            self._writer.close()

    def add_topic(self, name: str, msgtype: str, *, latched: bool = False) -> None:
        if name in self._connections:
            if self._connections[name][1] != msgtype:
                raise BagError(f"topic {name} already added with type {self._connections[name][1]}")
            return
        if msgtype not in typestore().types:
            raise BagError(f"topic {name}: message type {msgtype!r} is unknown to the typestore")
        conn = self._writer.add_connection(name, msgtype, typestore=typestore(),
                                           offered_qos_profiles=_qos(latched))
        self._connections[name] = (conn, msgtype)
        self.counts[name] = 0

    def write(self, topic: str, stamp_ns: int, msg: Any) -> None:
        """Serialise ``msg`` (a rosbags message of the topic's type) with log time ``stamp_ns``."""
        try:
            conn, msgtype = self._connections[topic]
        except KeyError:
            raise BagError(f"topic {topic} was not added to bag {self.path}") from None
        self._writer.write(conn, int(stamp_ns), typestore().serialize_cdr(msg, msgtype))
        self.counts[topic] += 1

    def set_metadata(self, key: str, value: Any) -> None:
        """Store a bag-level ``custom_data`` entry (value converted to str)."""
        self._writer.set_custom_data(str(key), str(value))


def remove_bag(path: Path) -> None:
    """Delete an existing bag, refusing anything that does not look like one."""
    looks_like_bag = path.is_dir() and ((path / "metadata.yaml").exists() or
                                        any(path.glob("*.mcap")) or any(path.glob("*.db3")))
    if not looks_like_bag:
        raise BagError(f"refusing to overwrite {path}: it is not a rosbag2 directory")
    shutil.rmtree(path)
