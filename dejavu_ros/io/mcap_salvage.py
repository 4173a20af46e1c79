"""Read what is left of an MCAP file whose summary/footer is missing or whose chunks are damaged.

rosbags refuses such files at open time (it needs the footer), yet an interrupted recording or a
cut copy still holds every record written before the cut. This scanner walks the records from
the start (MCAP framing: opcode u8, length u64, body) and yields messages until the framing
breaks. A chunk whose payload fails to decompress or to match its CRC is skipped and reported;
reading goes on after it because its length field is still valid. Memory is bounded by one
chunk.
"""
from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator

MAGIC = b"\x89MCAP0\r\n"
MAX_PARTIAL_CHUNK = 64 << 20
OP_HEADER, OP_FOOTER, OP_SCHEMA, OP_CHANNEL, OP_MESSAGE, OP_CHUNK, OP_DATA_END = 1, 2, 3, 4, 5, 6, 15


@dataclass
class Schema:
    id: int
    name: str
    encoding: str
    data: str


@dataclass
class Channel:
    id: int
    schema_id: int
    topic: str
    message_encoding: str


@dataclass
class RawMessage:
    channel_id: int
    log_time: int
    data: bytes


@dataclass
class ScanState:
    """What a scan found besides messages."""

    schemas: dict[int, Schema] = field(default_factory=dict)
    channels: dict[int, Channel] = field(default_factory=dict)
    damage: list[str] = field(default_factory=list)  # human-readable, with file and byte offset
    complete: bool = False  # reached the data-end record / footer


class _Truncated(Exception):
    """A record is cut; ``op`` and ``partial`` (the bytes that exist) allow partial recovery."""

    def __init__(self, message: str, op: int | None = None, offset: int = 0, partial: bytes = b""):
        super().__init__(message)
        self.op, self.offset, self.partial = op, offset, partial


def _decompress(data: bytes, compression: str, *, partial: bool = False) -> bytes:
    """Whole chunk payload; with ``partial`` the decodable prefix of a cut payload."""
    if compression == "":
        return data
    if compression == "zstd":
        try:
            from compression import zstd  # Python >= 3.14
        except ImportError:
            from backports import zstd  # installed with rosbags
        return zstd.ZstdDecompressor().decompress(data) if partial else zstd.decompress(data)
    if compression == "lz4":
        import lz4.frame

        return lz4.frame.LZ4FrameDecompressor().decompress(data) if partial else lz4.frame.decompress(data)
    raise ValueError(f"unsupported chunk compression {compression!r}")


def _string(buf: io.BytesIO) -> str:
    (size,) = struct.unpack("<I", _exact(buf, 4))
    return _exact(buf, size).decode("utf-8")


def _exact(buf: BinaryIO, size: int) -> bytes:
    data = buf.read(size)
    if len(data) != size:
        raise _Truncated(f"needs {size} bytes, {len(data)} left")
    return data


def _records(stream: BinaryIO, end: int) -> Iterator[tuple[int, int, bytes]]:
    """(offset, opcode, body) until ``end``; raises _Truncated when a record is cut."""
    while True:
        offset = stream.tell()
        if offset >= end:
            return
        head = stream.read(9)
        if len(head) < 9:
            raise _Truncated(f"record header at byte {offset} is cut ({len(head)} of 9 bytes)")
        op, length = struct.unpack("<BQ", head)
        if offset + 9 + length > end:
            remain = end - offset - 9
            keep = op == OP_CHUNK and remain <= MAX_PARTIAL_CHUNK  # a garbage length must not load the file
            raise _Truncated(f"record 0x{op:02x} at byte {offset} declares {length} bytes, "
                             f"only {remain} remain", op, offset, stream.read(remain) if keep else b"")
        yield offset, op, _exact(stream, length)


def _parse(op: int, body: bytes, state: ScanState) -> RawMessage | None:
    buf = io.BytesIO(body)
    if op == OP_SCHEMA:
        sid = struct.unpack("<H", _exact(buf, 2))[0]
        name, encoding = _string(buf), _string(buf)
        (size,) = struct.unpack("<I", _exact(buf, 4))
        state.schemas[sid] = Schema(sid, name, encoding, _exact(buf, size).decode("utf-8"))
    elif op == OP_CHANNEL:
        cid, sid = struct.unpack("<HH", _exact(buf, 4))
        state.channels[cid] = Channel(cid, sid, _string(buf), _string(buf))
    elif op == OP_MESSAGE:
        cid, _seq, log_time, _pub = struct.unpack("<HIQQ", _exact(buf, 22))
        return RawMessage(cid, log_time, body[22:])
    return None


def scan_mcap(path: str | Path, state: ScanState | None = None) -> Iterator[RawMessage]:
    """Yield the messages of ``path`` in file order; fill ``state`` with channels and damage."""
    path = Path(path)
    state = state if state is not None else ScanState()
    size = path.stat().st_size
    with path.open("rb") as stream:
        if stream.read(8) != MAGIC:
            state.damage.append(f"{path}: not an MCAP file (bad magic at byte 0)")
            return
        try:
            for offset, op, body in _records(stream, size):
                if op in (OP_DATA_END, OP_FOOTER):
                    state.complete = True
                    return
                if op == OP_CHUNK:
                    yield from _chunk_messages(path, offset, body, state)
                    continue
                msg = _parse(op, body, state)
                if msg is not None:
                    yield msg
        except _Truncated as exc:
            recovered = _cut_chunk_messages(exc.partial, state) if exc.op == OP_CHUNK else []
            yield from recovered
            note = f"; {len(recovered)} messages recovered from the cut chunk" if exc.op == OP_CHUNK else ""
            state.damage.append(f"{path}: truncated, {exc}{note}")
            return
        state.damage.append(f"{path}: ends at byte {size} without the MCAP data-end record and footer "
                            "(recording interrupted?)")


def _inner_messages(raw: bytes, state: ScanState, *, tolerate_cut: bool) -> list[RawMessage]:
    """Messages of a decompressed chunk, in time order (a chunk need not be ordered)."""
    messages: list[RawMessage] = []
    try:
        for _o, op, rec in _records(io.BytesIO(raw), len(raw)):
            msg = _parse(op, rec, state)
            if msg is not None:
                messages.append(msg)
    except _Truncated:
        if not tolerate_cut:
            raise
    messages.sort(key=lambda m: m.log_time)
    return messages


def _cut_chunk_messages(partial: bytes, state: ScanState) -> list[RawMessage]:
    """The complete messages at the start of a chunk whose end is missing."""
    try:
        buf = io.BytesIO(partial[28:])
        compression = _string(buf)
        _exact(buf, 8)
        raw = _decompress(buf.read(), compression, partial=True)
    except Exception:  # noqa: BLE001 - too little of the chunk is left to decode anything
        return []
    return _inner_messages(raw, state, tolerate_cut=True)


def _chunk_messages(path: Path, offset: int, body: bytes, state: ScanState) -> Iterator[RawMessage]:
    try:
        _start, _end, raw_size, crc = struct.unpack("<QQQI", body[:28])
        buf = io.BytesIO(body[28:])
        compression = _string(buf)
        (length,) = struct.unpack("<Q", _exact(buf, 8))
        raw = _decompress(_exact(buf, length), compression)
        if len(raw) != raw_size or (crc and zlib.crc32(raw) != crc):
            raise ValueError("size or CRC mismatch")
    except Exception as exc:  # noqa: BLE001 - any decoder error means this chunk is lost
        state.damage.append(f"{path}: chunk at byte {offset} unreadable ({exc}); skipped")
        return
    try:
        messages = _inner_messages(raw, state, tolerate_cut=False)
    except _Truncated as exc:
        state.damage.append(f"{path}: chunk at byte {offset} is malformed ({exc}); skipped")
        return
    yield from messages
