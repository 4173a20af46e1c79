"""Compact, pickle-free storage of numpy arrays in SQLite BLOBs.

A blob is a tiny header (dtype code, number of dimensions, each dimension as uint32) followed by
the array's raw little-endian C-order bytes. Reading it back needs no code execution, and a
damaged blob is detected by its length.
"""
from __future__ import annotations

import struct

import numpy as np

from .errors import MapError

_CODES = {1: np.dtype("<f2"), 2: np.dtype("<f4"), 3: np.dtype("<f8"), 4: np.dtype("u1"),
          5: np.dtype("<i4"), 6: np.dtype("<i8")}
_CODE_OF = {dt: code for code, dt in _CODES.items()}
_HEAD = struct.Struct("<BB")
_DIM = struct.Struct("<I")


def encode_array(array: np.ndarray, dtype: str | np.dtype) -> bytes:
    """Serialise ``array`` converted to ``dtype`` (one of float16/32/64, uint8, int32/64)."""
    dt = np.dtype(dtype).newbyteorder("<") if np.dtype(dtype).itemsize > 1 else np.dtype(dtype)
    code = _CODE_OF.get(dt)
    if code is None:
        raise TypeError(f"unsupported array dtype for the map: {dtype}")
    arr = np.ascontiguousarray(array, dtype=dt)
    if arr.ndim > 255:
        raise ValueError("too many dimensions")
    head = _HEAD.pack(code, arr.ndim) + b"".join(_DIM.pack(int(s)) for s in arr.shape)
    return head + arr.tobytes()


def blob_layout(blob: bytes, what: str = "array") -> tuple[np.dtype, tuple[int, ...], int]:
    """(dtype, shape, payload offset) of a blob; :class:`MapError` when the blob is damaged."""
    if blob is None or len(blob) < _HEAD.size:
        raise MapError(f"{what}: stored array is damaged (blob too short)")
    code, ndim = _HEAD.unpack_from(blob, 0)
    dt = _CODES.get(code)
    offset = _HEAD.size + ndim * _DIM.size
    if dt is None or len(blob) < offset:
        raise MapError(f"{what}: stored array is damaged (bad header)")
    shape = tuple(_DIM.unpack_from(blob, _HEAD.size + i * _DIM.size)[0] for i in range(ndim))
    expected = offset + int(np.prod(shape, dtype=np.int64)) * dt.itemsize
    if len(blob) != expected:
        raise MapError(f"{what}: stored array is damaged ({len(blob)} bytes, expected {expected})")
    return dt, shape, offset


def decode_array(blob: bytes, what: str = "array", copy: bool = True) -> np.ndarray:
    """Inverse of :func:`encode_array`. ``copy=False`` returns a read-only view of ``blob``."""
    dt, shape, offset = blob_layout(blob, what)
    arr = np.frombuffer(blob, dtype=dt, offset=offset).reshape(shape)
    return arr.copy() if copy else arr


def decode_optional(blob: bytes | None, what: str) -> np.ndarray | None:
    return None if blob is None else decode_array(blob, what)


def stack_blobs(rows: list, field: str, shape: tuple | None, dtype, where: str) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, array)`` from ``(id, blob)`` rows, decoded straight into one preallocated array (a map
    load is one copy, not one per keyframe); ``shape`` None = from the first row. ``where`` names the
    file in errors."""
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    if not rows:
        return ids, np.zeros((0, *(shape or ())), dtype=dtype)
    layouts = [blob_layout(blob, f"{where} keyframe {kf_id} {field}") for kf_id, blob in rows]
    first = layouts[0][1]
    for (kf_id, _), (_, item_shape, _) in zip(rows, layouts):
        if item_shape != first:
            raise MapError(f"{where}: keyframe {kf_id} has a {field} of shape {item_shape}, "
                           f"keyframe {rows[0][0]} has {first}; they cannot be stacked")
    out = np.empty((len(rows), *first), dtype=dtype)
    for k, ((_, blob), (dt, item_shape, offset)) in enumerate(zip(rows, layouts)):
        out[k] = np.frombuffer(blob, dtype=dt, offset=offset).reshape(item_shape)
    return ids, out
