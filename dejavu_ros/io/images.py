"""Image messages -> RGB / depth arrays, for the ROS node and the offline replay alike.

Everything here reads messages by field name only (``height``, ``width``, ``encoding``,
``is_bigendian``, ``step``, ``data``; ``format`` for CompressedImage), so rclpy messages,
rosbags messages and plain records (:class:`RawImage`) go through the same code. Pixel
conversion and demosaicing are done by rosbags-image (OpenCV underneath) after this module has
checked the message and removed row padding, because the library trusts ``step`` blindly.

16-bit images (mono16, 16UC1, rgb16, bayer_*16, ...) are reduced to 8 bit by one of:

* ``"max"`` (default): divide by the image's own maximum, so 10/12-bit sensors use the full
  8-bit range. The feature network scales every image by its maximum anyway, so this loses
  nothing for the default preprocessing.
* ``"minmax"``: stretch [min, max] to [0, 255] (thermal cameras, whose values sit in a
  narrow band far from 0).
* ``"full"``: divide by 65535 (absolute intensities preserved, dark 12-bit images stay dark).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from rosbags.image import ImageError, compressed_image_to_cvimage, image_to_cvimage

from .camera_info import camera_info_to_intrinsics  # noqa: F401 - re-exported: the node's one import site
from .errors import ImageDecodeError

#: encoding -> (channels, bytes per channel); the rosbags-image names, plus depth encodings
_LAYOUT: dict[str, tuple[int, int]] = {
    "mono8": (1, 1), "rgb8": (3, 1), "bgr8": (3, 1), "rgba8": (4, 1), "bgra8": (4, 1),
    "bayer_rggb8": (1, 1), "bayer_bggr8": (1, 1), "bayer_gbrg8": (1, 1), "bayer_grbg8": (1, 1),
    "uyvy": (2, 1), "yuv422": (2, 1), "yuyv": (2, 1), "yuv422_yuy2": (2, 1),
    "mono16": (1, 2), "rgb16": (3, 2), "bgr16": (3, 2), "rgba16": (4, 2), "bgra16": (4, 2),
    "bayer_rggb16": (1, 2), "bayer_bggr16": (1, 2), "bayer_gbrg16": (1, 2), "bayer_grbg16": (1, 2),
}
#: OpenCV-style names mapped to the colour encoding they conventionally carry (cv_bridge)
_ALIASES = {"8UC1": "mono8", "8UC3": "bgr8", "8UC4": "bgra8", "16UC1": "mono16", "16UC3": "bgr16",
            "16UC4": "bgra16"}
#: encodings that hold depth, not intensity
_DEPTH_LAYOUT = {"16UC1": (1, 2), "mono16": (1, 2), "32FC1": (1, 4)}

SUPPORTED_ENCODINGS = tuple(sorted(set(_LAYOUT) | set(_ALIASES)))
MONO16_MODES = ("max", "minmax", "full")


@dataclass
class RawImage:
    """A sensor_msgs/Image-shaped record built from an array (no message class needed)."""

    height: int
    width: int
    encoding: str
    step: int
    data: Any
    is_bigendian: int = 0

    @classmethod
    def from_array(cls, array: np.ndarray, encoding: str) -> "RawImage":
        array = np.ascontiguousarray(array)
        if array.dtype.itemsize > 1 and array.dtype.byteorder == ">":
            array = array.astype(array.dtype.newbyteorder("<"))
        height, width = array.shape[:2]
        return cls(height=height, width=width, encoding=encoding,
                   step=int(array.strides[0]), data=array.reshape(-1).view(np.uint8))


def _where(topic: str) -> str:
    return f"topic '{topic}'" if topic else "image message"


def _as_bytes(data: Any) -> np.ndarray:
    """uint8 view of a message's data (bytes, array.array, numpy array or list)."""
    if isinstance(data, np.ndarray):
        return data.reshape(-1).view(np.uint8) if data.dtype != np.uint8 else data.reshape(-1)
    if isinstance(data, (list, tuple)):
        return np.asarray(data, dtype=np.uint8)
    return np.frombuffer(data, dtype=np.uint8)


def is_compressed(msg: Any) -> bool:
    return hasattr(msg, "format") and not hasattr(msg, "encoding")


def _canonical_encoding(encoding: str, topic: str) -> str:
    enc = str(encoding).strip()
    enc = _ALIASES.get(enc, enc)
    if enc in _LAYOUT:
        return enc
    lowered = enc.lower()
    if lowered in _LAYOUT:
        return lowered
    hint = " (a depth encoding: use depth_to_metres)" if enc == "32FC1" else ""
    raise ImageDecodeError(f"{_where(topic)} field 'encoding': unsupported encoding {encoding!r}{hint}; "
                           f"supported: {', '.join(SUPPORTED_ENCODINGS)}")


def _packed_pixels(msg: Any, encoding: str, layout: tuple[int, int], topic: str) -> RawImage:
    """Check sizes against the encoding and return the image without row padding."""
    where = _where(topic)
    channels, depth = layout
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ImageDecodeError(f"{where}: zero-sized image (field 'height'={height}, 'width'={width})")
    data = _as_bytes(msg.data)
    row = width * channels * depth
    eight_bit_row = width * channels
    if depth > 1 and (step == eight_bit_row or data.size == height * eight_bit_row):
        raise ImageDecodeError(
            f"{where}: encoding {msg.encoding!r} is {8 * depth}-bit but field 'step'={step} / "
            f"'data' ({data.size} bytes) are sized for 8-bit pixels ({eight_bit_row} bytes per row); "
            "the publisher probably mislabelled an 8-bit image")
    if depth == 1 and row >= 512 and step == 2 * row and data.size == height * step:
        raise ImageDecodeError(
            f"{where}: encoding {msg.encoding!r} is 8-bit but field 'step'={step} is exactly twice "
            f"width*channels = {row}: the rows hold 16-bit pixels; the publisher probably mislabelled a "
            "16-bit image")
    if channels == 2 and width % 2:
        raise ImageDecodeError(f"{where} field 'width': {width} is odd; {msg.encoding!r} packs two pixels "
                               "into 4 bytes and needs an even width")
    if step < row:
        raise ImageDecodeError(f"{where} field 'step': {step} is smaller than width*bytes_per_pixel = "
                               f"{width}*{channels * depth} = {row} for encoding {msg.encoding!r}")
    if data.size < height * step:
        raise ImageDecodeError(f"{where} field 'data': {data.size} bytes, expected height*step = "
                               f"{height}*{step} = {height * step}")
    rows = data[: height * step].reshape(height, step)
    if step != row:
        rows = np.ascontiguousarray(rows[:, :row])
    return RawImage(height=height, width=width, encoding=encoding, step=row, data=rows.reshape(-1),
                    is_bigendian=int(bool(getattr(msg, "is_bigendian", 0))))


def to_8bit(image16: np.ndarray, mode: str = "max") -> np.ndarray:
    """Reduce a 16-bit image to uint8 (see the module docstring for the modes)."""
    if mode not in MONO16_MODES:
        raise ImageDecodeError(f"16-bit scaling mode {mode!r} is not one of {list(MONO16_MODES)}")
    img = image16.astype(np.float32)
    if mode == "full":
        scaled = img * (255.0 / 65535.0)
    else:
        low = float(img.min()) if mode == "minmax" else 0.0
        span = max(float(img.max()) - low, 1.0)
        scaled = (img - low) * (255.0 / span)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def image_to_rgb(msg: Any, *, topic: str = "", mono16: str = "max") -> np.ndarray:
    """sensor_msgs/Image or CompressedImage -> HxWx3 uint8 RGB (C-contiguous).

    Grayscale is replicated to three channels; Bayer images are demosaiced (OpenCV bilinear);
    16-bit images are reduced with ``mono16`` (module docstring). Raises
    :class:`ImageDecodeError` naming ``topic`` and the field at fault.
    """
    if is_compressed(msg):
        return _compressed_to_rgb(msg, topic)
    encoding = _canonical_encoding(msg.encoding, topic)
    packed = _packed_pixels(msg, encoding, _LAYOUT[encoding], topic)
    try:
        if _LAYOUT[encoding][1] == 1:
            rgb = image_to_cvimage(packed, "rgb8")
        else:
            rgb = to_8bit(image_to_cvimage(packed, "rgb16"), mono16)
    except (ImageError, cv2.error) as exc:
        raise ImageDecodeError(f"{_where(topic)}: cannot convert encoding {msg.encoding!r}: {exc}") from None
    if np.shares_memory(rgb, packed.data):  # rgb8 passes through: never alias the message buffer
        rgb = rgb.copy()
    return np.ascontiguousarray(rgb)


#: compressed images declaring more pixels are refused before decoding (8192² = features.max_side's cap)
MAX_COMPRESSED_PIXELS = 8192 * 8192


def declared_size(data: np.ndarray) -> tuple[int, int] | None:
    """(width, height) read from a PNG IHDR or a JPEG SOFn header without decoding; None if unknown."""
    head = data[: 1 << 18].tobytes()
    if head.startswith(b"\x89PNG\r\n\x1a\n") and len(head) >= 24:
        return struct.unpack(">II", head[16:24])
    i = 2 if head.startswith(b"\xff\xd8") else len(head)
    while i + 9 <= len(head) and head[i] == 0xFF:
        marker = head[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", head[i + 5:i + 9])
            return width, height
        i += 2 + struct.unpack(">H", head[i + 2:i + 4])[0]
    return None


def _compressed_to_rgb(msg: Any, topic: str) -> np.ndarray:
    where = _where(topic)
    fmt = str(getattr(msg, "format", ""))
    if "compresseddepth" in fmt.lower():
        raise ImageDecodeError(f"{where} field 'format': {fmt!r} is a depth image; use depth_to_metres")
    data = _as_bytes(msg.data)
    if data.size == 0:
        raise ImageDecodeError(f"{where} field 'data' is empty (format {fmt!r})")
    size = declared_size(data)
    if size is not None and size[0] * size[1] > MAX_COMPRESSED_PIXELS:
        raise ImageDecodeError(f"{where} field 'data': the image declares {size[0]}x{size[1]} pixels, more "
                               f"than the {MAX_COMPRESSED_PIXELS} decoded at most (format {fmt!r})")
    try:
        img = compressed_image_to_cvimage(_Compressed(format=fmt, data=data))
    except (AssertionError, cv2.error):
        img = None
    if img is None:
        raise ImageDecodeError(f"{where} field 'data': {data.size} bytes are not a decodable JPEG/PNG "
                               f"(format {fmt!r})")
    if img.ndim == 2:
        code = cv2.COLOR_GRAY2RGB
    elif img.shape[2] == 4:
        code = cv2.COLOR_BGRA2RGB
    else:
        code = cv2.COLOR_BGR2RGB
    return np.ascontiguousarray(cv2.cvtColor(img, code))


@dataclass
class _Compressed:
    format: str
    data: np.ndarray


def demosaic(raw: np.ndarray, pattern: str) -> np.ndarray:
    """Bayer mosaic (HxW uint8/uint16) with ``pattern`` 'rggb'|'bggr'|'gbrg'|'grbg' -> RGB uint8.

    Goes through :func:`image_to_rgb`, so files and messages are demosaiced identically.
    """
    bits = 16 if raw.dtype == np.uint16 else 8
    encoding = f"bayer_{pattern.lower()}{bits}"
    if raw.ndim != 2 or encoding not in _LAYOUT:
        raise ImageDecodeError(f"cannot demosaic a {raw.dtype} array of shape {raw.shape} with pattern "
                               f"{pattern!r}")
    return image_to_rgb(RawImage.from_array(raw, encoding))


def depth_to_metres(msg: Any, *, topic: str = "") -> np.ndarray:
    """Depth Image (16UC1/mono16 millimetres, 32FC1 metres) or compressedDepth -> HxW float32 metres.

    Invalid pixels (0 mm, non-finite, <= 0 m) become NaN.
    """
    if is_compressed(msg):
        return _compressed_depth_to_metres(msg, topic)
    encoding = str(msg.encoding).strip()
    if encoding not in _DEPTH_LAYOUT:
        raise ImageDecodeError(f"{_where(topic)} field 'encoding': {encoding!r} is not a depth encoding "
                               f"(expected one of {sorted(_DEPTH_LAYOUT)})")
    packed = _packed_pixels(msg, "16UC1" if encoding == "mono16" else encoding,
                            _DEPTH_LAYOUT[encoding], topic)
    values = image_to_cvimage(packed)
    if values.dtype == np.uint16:
        depth = values.astype(np.float32) * 1e-3
        depth[values == 0] = np.nan
    else:
        depth = values.astype(np.float32, copy=True)
        depth[~np.isfinite(depth) | (depth <= 0)] = np.nan
    return depth


def _compressed_depth_to_metres(msg: Any, topic: str) -> np.ndarray:
    """compressed_depth_image_transport: 12-byte header (format, quantA, quantB) + PNG."""
    where = _where(topic)
    fmt = str(getattr(msg, "format", ""))
    data = _as_bytes(msg.data)
    if "compresseddepth" not in fmt.lower() or data.size <= 12:
        raise ImageDecodeError(f"{where} field 'format'/'data': {fmt!r} with {data.size} bytes is not a "
                               "compressedDepth image")
    _, quant_a, quant_b = struct.unpack("<iff", data[:12].tobytes())
    png = cv2.imdecode(data[12:], cv2.IMREAD_UNCHANGED)
    if png is None or png.dtype != np.uint16 or png.ndim != 2:
        raise ImageDecodeError(f"{where} field 'data': payload is not a 16-bit single-channel PNG")
    if fmt.split(";")[0].strip() == "32FC1":
        depth = np.full(png.shape, np.nan, np.float32)
        valid = png > 0
        depth[valid] = quant_a / (png[valid].astype(np.float32) - quant_b)
        depth[~np.isfinite(depth) | (depth <= 0)] = np.nan
        return depth
    depth = png.astype(np.float32) * 1e-3
    depth[png == 0] = np.nan
    return depth


def read_rgb(path) -> np.ndarray:
    """An image file as H×W×3 uint8 RGB (grey files replicated); the error names the file."""
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise ImageDecodeError(f"image not found: {path}")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ImageDecodeError(f"cannot read image (not an image or unsupported format): {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def image_message(array: np.ndarray, encoding: str, header: Any, image_cls: Any = None) -> Any:
    """Build a rosbags sensor_msgs/Image (``data`` as a numpy array, as rosbags serialises it)."""
    if image_cls is None:
        from .typestore import msg_class

        image_cls = msg_class("sensor_msgs/msg/Image")
    raw = RawImage.from_array(array, encoding)
    return image_cls(header=header, height=raw.height, width=raw.width, encoding=encoding,
                     is_bigendian=0, step=raw.step, data=raw.data)
