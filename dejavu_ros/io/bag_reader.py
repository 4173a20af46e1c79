"""Stream messages out of rosbag2 bags (mcap or sqlite3) with rosbags, surviving damaged files.

Messages come one at a time in the bag's log-time order, so memory does not grow with the
bag. A damaged bag yields every message that can still be read and only then raises
:class:`BagDamagedError`, so a replay can say "processed N frames, bag damaged at ...":

    with BagReader(path) as bag:
        try:
            for m in bag.messages(["/camera/image_raw"]):
                ...
        except BagDamagedError as exc:
            print(f"stopped early: {exc}")
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import yaml
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore
from rosbags.typesys import get_types_from_idl, get_types_from_msg

from .errors import BagDamagedError, BagError, TopicNotFoundError
from .mcap_salvage import RawMessage, ScanState, scan_mcap
from .typestore import stamp_to_ns, typestore

log = logging.getLogger(__name__)


@dataclass
class BagMessage:
    topic: str
    stamp_ns: int  # header stamp; the log time for messages without a (non-zero) header stamp
    log_time_ns: int  # when the recorder received it (the order messages come in)
    msgtype: str  # e.g. "sensor_msgs/msg/Image"
    msg: Any


def header_stamp_ns(msg: Any) -> int | None:
    """Stamp of ``msg.header`` in ns, None when there is no header or the stamp is zero."""
    header = getattr(msg, "header", None)
    stamp = getattr(header, "stamp", None)
    if stamp is None:
        return None
    ns = stamp_to_ns(stamp)
    return ns or None


def _split_order(path: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def _storage_files(path: Path, suffix: str) -> list[Path]:
    """Storage files of a bag in split order (bag_2 before bag_10)."""
    if path.is_file():
        return [path] if path.suffix == suffix else []
    return sorted((p for p in path.glob(f"*{suffix}") if p.is_file()), key=_split_order)


def read_custom_data(path: str | Path) -> dict[str, str]:
    """The ``custom_data`` mapping of a bag's metadata.yaml ({} when absent)."""
    path = Path(path)
    meta = path / "metadata.yaml" if path.is_dir() else path.parent / "metadata.yaml"
    if not meta.is_file():
        return {}
    try:
        info = (yaml.safe_load(meta.read_text()) or {}).get("rosbag2_bagfile_information", {})
    except yaml.YAMLError:
        return {}
    return {str(k): str(v) for k, v in (info.get("custom_data") or {}).items()}


def _one_line(exc: BaseException, limit: int = 240) -> str:
    """An exception as one short line (rosbags passes YAML parser dumps through several lines)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _open_any(path: Path) -> AnyReader:
    reader = AnyReader([path], default_typestore=typestore())
    reader.open()
    return reader


class BagReader:
    """One rosbag2 bag (directory, or a bare .mcap/.db3 file), opened with rosbags.

    When rosbags cannot open an MCAP bag (no footer after a crash, no metadata.yaml, cut copy)
    the reader falls back to scanning the MCAP records; :attr:`damage` then says why.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.damage: str | None = None  # set when the bag had to be read in salvage mode
        self.custom_data: dict[str, str] = {}
        self._any: AnyReader | None = None
        self._salvage_files: list[Path] = []
        self._salvage_topics: dict[str, str] | None = None
        self._salvage_store = None

    # -- opening ---------------------------------------------------------------------------
    def open(self) -> "BagReader":
        if not self.path.exists():
            raise BagError(f"bag not found: {self.path}")
        try:
            self._any = _open_any(self.path)
        except Exception as open_exc:  # noqa: BLE001 - rosbags raises several types for unreadable bags
            exc: Exception = open_exc
            db3 = _storage_files(self.path, ".db3")
            if self.path.is_dir() and len(db3) == 1:  # sqlite3 bag without metadata.yaml
                try:
                    self._any = _open_any(db3[0])
                    return self
                except Exception as db3_exc:  # noqa: BLE001
                    exc = db3_exc
            self._salvage_files = _storage_files(self.path, ".mcap")
            if not self._salvage_files:
                raise BagError(f"cannot open bag {self.path}: {_one_line(exc)}") from None
            self.damage = f"rosbags cannot open it ({_one_line(exc)}); reading the MCAP records directly"
            log.warning("bag %s: %s", self.path, self.damage)
        self.custom_data = read_custom_data(self.path)
        return self

    def close(self) -> None:
        if self._any is not None:
            self._any.close()
            self._any = None

    def __enter__(self) -> "BagReader":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- metadata --------------------------------------------------------------------------
    @property
    def topics(self) -> dict[str, str]:
        """topic -> message type. In salvage mode this scans the file once (no decoding)."""
        if self._any is not None:
            return {name: info.msgtype or "?" for name, info in sorted(self._any.topics.items())}
        if self._salvage_topics is None:
            state = ScanState()
            for file in self._salvage_files:
                for _ in scan_mcap(file, state):
                    pass
            self._salvage_topics = {c.topic: state.schemas[c.schema_id].name if c.schema_id in
                                    state.schemas else "?" for c in state.channels.values()}
        return dict(sorted(self._salvage_topics.items()))

    @property
    def message_counts(self) -> dict[str, int]:
        """topic -> message count from the bag's index ({} in salvage mode, where it is unknown)."""
        if self._any is None:
            return {}
        return {name: info.msgcount for name, info in self._any.topics.items()}

    def require_topics(self, topics: Iterable[str]) -> None:
        """Raise :class:`TopicNotFoundError` listing the bag's topics if any of ``topics`` is absent."""
        have = self.topics
        if not have and self._any is None:
            raise BagError(f"bag {self.path} is damaged or not a rosbag2 bag: no readable topics "
                           f"({self.damage})")
        missing = [t for t in topics if t not in have]
        if missing:
            listing = ", ".join(f"{t} ({m})" for t, m in have.items()) or "none"
            raise TopicNotFoundError(f"bag {self.path} has no topic {', '.join(map(repr, missing))}; "
                                     f"topics in the bag: {listing}")

    def require_type(self, topic: str, allowed: Iterable[str], role: str) -> None:
        """Raise :class:`BagError` when ``topic`` carries none of the ``allowed`` message types."""
        allowed = tuple(allowed)
        msgtype = self.topics.get(topic)
        if msgtype not in (None, "?") and msgtype not in allowed:
            raise BagError(f"bag {self.path}: {role} topic '{topic}' has type {msgtype}; expected "
                           f"{' or '.join(allowed)}")

    # -- messages --------------------------------------------------------------------------
    def messages(self, topics: Iterable[str] | None = None, start_ns: int | None = None,
                 stop_ns: int | None = None) -> Iterator[BagMessage]:
        """Messages of ``topics`` (all when None) with start_ns <= log time < stop_ns.

        They come in log-time order; a bag read in salvage mode comes in recording order
        (time order within each chunk), which for a recorder's file is the same thing.
        Raises :class:`TopicNotFoundError` before yielding anything when a topic is missing, and
        :class:`BagDamagedError` after the last readable message when the bag is damaged.
        """
        wanted = None if topics is None else list(dict.fromkeys(topics))
        if wanted is not None:
            self.require_topics(wanted)
        progress = _Progress()
        damage: list[str] = []
        if self._any is not None:
            failure = yield from self._indexed(wanted, start_ns, stop_ns, progress, damage)
            if failure is not None:
                files = _storage_files(self.path, ".mcap")
                if not files:
                    damage.append(failure)
                    raise BagDamagedError(str(self.path), "; ".join(damage), progress.count, progress.last)
                damage.append(f"{failure}; continued by scanning the MCAP records")
                self._salvage_files = files
                progress.freeze()
                yield from self._salvaged(wanted, start_ns, stop_ns, progress, damage)
        else:
            damage.append(self.damage or "")
            yield from self._salvaged(wanted, start_ns, stop_ns, progress, damage)
        damage = [d for d in damage if d]
        if damage:
            raise BagDamagedError(str(self.path), "; ".join(damage), progress.count, progress.last)

    def _indexed(self, wanted, start_ns, stop_ns, progress: "_Progress", damage: list[str]):
        """Read through rosbags; return a failure description instead of raising mid-stream."""
        reader = self._any
        assert reader is not None
        conns = [c for c in reader.connections if wanted is None or c.topic in wanted]
        if not conns:
            return None
        stream = reader.messages(connections=conns, start=start_ns, stop=stop_ns)
        while True:
            try:
                conn, log_time, raw = next(stream)
            except StopIteration:
                return None
            except Exception as exc:  # noqa: BLE001 - storage errors of any kind end the indexed read
                return f"read error after {progress.count} messages ({type(exc).__name__}: {exc})"
            try:
                msg = reader.deserialize(raw, conn.msgtype)
            except Exception as exc:  # noqa: BLE001
                damage.append(f"{conn.topic} message at {log_time} ns cannot be decoded ({exc}); skipped")
                continue
            yield progress.emit(conn.topic, log_time, conn.msgtype, msg)

    def _salvaged(self, wanted, start_ns, stop_ns, progress: "_Progress", damage: list[str]):
        for file in self._salvage_files:
            state = ScanState()
            for raw in scan_mcap(file, state):
                item = self._decode_salvaged(raw, state, wanted, start_ns, stop_ns, progress, damage)
                if item is not None:
                    yield item
            damage.extend(state.damage)

    def _decode_salvaged(self, raw: RawMessage, state: ScanState, wanted, start_ns, stop_ns,
                         progress: "_Progress", damage: list[str]) -> BagMessage | None:
        channel = state.channels.get(raw.channel_id)
        if channel is None or (wanted is not None and channel.topic not in wanted):
            return None
        before = start_ns is not None and raw.log_time < start_ns
        if before or (stop_ns is not None and raw.log_time >= stop_ns):
            return None
        if progress.already_yielded(channel.topic, raw.log_time):
            return None
        schema = state.schemas.get(channel.schema_id)
        msgtype = schema.name if schema else "?"
        try:
            msg = self._store_for(msgtype, schema).deserialize_cdr(raw.data, msgtype)
        except Exception as exc:  # noqa: BLE001
            damage.append(f"{channel.topic} message at {raw.log_time} ns cannot be decoded ({exc}); skipped")
            return None
        return progress.emit(channel.topic, raw.log_time, msgtype, msg)

    def _store_for(self, msgtype: str, schema) -> Any:
        """The shared typestore when it knows the type, else one built from the bag's schema."""
        if msgtype in typestore().types:
            return typestore()
        if self._salvage_store is None:
            self._salvage_store = get_typestore(Stores.EMPTY)
        if msgtype not in self._salvage_store.types and schema is not None:
            if schema.encoding == "ros2idl":
                self._salvage_store.register(get_types_from_idl(schema.data))
            else:
                self._salvage_store.register(get_types_from_msg(schema.data, msgtype))
        return self._salvage_store


class _Progress:
    """Counts what was yielded; lets a salvage pass skip what the indexed pass already gave."""

    def __init__(self) -> None:
        self.count = 0
        self.last: int | None = None
        self._at_last: set[str] = set()
        self._resume: tuple[int, set[str]] | None = None

    def freeze(self) -> None:
        """Remember how far the indexed pass got (it yielded in time order up to here)."""
        if self.last is not None:
            self._resume = (self.last, set(self._at_last))

    def emit(self, topic: str, log_time: int, msgtype: str, msg: Any) -> BagMessage:
        self.count += 1
        if log_time != self.last:
            self._at_last = set()
        self.last = log_time
        self._at_last.add(topic)
        stamp = header_stamp_ns(msg)
        return BagMessage(topic, stamp if stamp is not None else log_time, log_time, msgtype, msg)

    def already_yielded(self, topic: str, log_time: int) -> bool:
        if self._resume is None:
            return False
        last, topics = self._resume
        return log_time < last or (log_time == last and topic in topics)


def iter_messages(path: str | Path, topics: Iterable[str] | None = None) -> Iterator[BagMessage]:
    """Open, stream and close in one call (see :meth:`BagReader.messages`)."""
    with BagReader(path) as bag:
        yield from bag.messages(topics)
