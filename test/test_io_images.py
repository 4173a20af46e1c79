"""Image and depth decoding: every encoding, padded rows, rclpy-style messages, and bad input."""
from __future__ import annotations

import array
import struct
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from dejavu_ros.io.errors import ImageDecodeError
from dejavu_ros.io.images import RawImage, demosaic, depth_to_metres, image_message, image_to_rgb, to_8bit
from dejavu_ros.io.typestore import header, typestore

H, W = 24, 32
CHANNEL = {"r": 0, "g": 1, "b": 2}


def smooth_rgb() -> np.ndarray:
    """Linear ramps: bilinear demosaicing reproduces them exactly away from the border."""
    y, x = np.mgrid[0:H, 0:W]
    return np.stack([x * 6 + 20, y * 8 + 10, 230 - x * 3 - y * 2], axis=-1).astype(np.uint8)


def noisy_rgb(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def mosaic(rgb: np.ndarray, pattern: str) -> np.ndarray:
    out = np.zeros(rgb.shape[:2], rgb.dtype)
    for (dy, dx), letter in zip([(0, 0), (0, 1), (1, 0), (1, 1)], pattern):
        out[dy::2, dx::2] = rgb[dy::2, dx::2, CHANNEL[letter]]
    return out


def msg_from(array_: np.ndarray, encoding: str, pad: int = 0, bigendian: bool = False,
             rclpy_style: bool = False) -> SimpleNamespace:
    """A message-shaped object; ``pad`` extra bytes per row; rclpy-style data is array.array('B')."""
    arr = np.ascontiguousarray(array_)
    if bigendian:
        arr = arr.astype(arr.dtype.newbyteorder(">"))
    rows = arr.reshape(arr.shape[0], -1).view(np.uint8)
    if pad:
        rows = np.concatenate([rows, np.full((rows.shape[0], pad), 77, np.uint8)], axis=1)
    data = rows.tobytes()
    return SimpleNamespace(height=arr.shape[0], width=arr.shape[1], encoding=encoding,
                           is_bigendian=int(bigendian), step=rows.shape[1],
                           data=array.array("B", data) if rclpy_style else data)


@pytest.mark.parametrize("pad", [0, 5])
@pytest.mark.parametrize("encoding,make", [
    ("rgb8", lambda c: c),
    ("bgr8", lambda c: c[..., ::-1]),
    ("8UC3", lambda c: c[..., ::-1]),
    ("rgba8", lambda c: np.dstack([c, np.full(c.shape[:2], 9, np.uint8)])),
    ("bgra8", lambda c: np.dstack([c[..., ::-1], np.full(c.shape[:2], 9, np.uint8)])),
])
def test_colour_encodings_round_trip(encoding, make, pad):
    rgb = noisy_rgb()
    out = image_to_rgb(msg_from(make(rgb), encoding, pad=pad))
    assert out.dtype == np.uint8 and out.shape == (H, W, 3) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, rgb)


@pytest.mark.parametrize("encoding", ["mono8", "8UC1"])
def test_mono8_is_replicated_to_three_channels(encoding):
    gray = noisy_rgb()[..., 0]
    out = image_to_rgb(msg_from(gray, encoding, pad=3))
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], gray)


@pytest.mark.parametrize("bigendian", [False, True])
@pytest.mark.parametrize("encoding", ["mono16", "16UC1"])
def test_mono16_scaled_by_image_maximum(encoding, bigendian):
    gray12 = (noisy_rgb()[..., 0].astype(np.uint16) * 16)  # 12-bit sensor range
    out = image_to_rgb(msg_from(gray12, encoding, pad=2, bigendian=bigendian))
    expected = np.rint(gray12 * (255.0 / gray12.max())).astype(np.uint8)
    np.testing.assert_array_equal(out[..., 0], expected)
    np.testing.assert_array_equal(out[..., 2], expected)


def test_mono16_modes():
    img = np.array([[1000, 2000], [3000, 4000]], np.uint16)
    full = np.rint(img.astype(float) * 255 / 65535).astype(np.uint8)
    np.testing.assert_array_equal(to_8bit(img, "full"), full)
    np.testing.assert_array_equal(to_8bit(img, "minmax"), [[0, 85], [170, 255]])
    assert to_8bit(img, "max")[1, 1] == 255
    out = image_to_rgb(msg_from(img, "mono16"), mono16="minmax")
    assert out[0, 0, 0] == 0 and out[1, 1, 1] == 255
    with pytest.raises(ImageDecodeError, match="scaling mode"):
        to_8bit(img, "log")


def test_rgb16_and_bgr16():
    rgb16 = noisy_rgb().astype(np.uint16) * 256
    expected = np.rint(rgb16 * (255.0 / rgb16.max())).astype(np.uint8)
    np.testing.assert_array_equal(image_to_rgb(msg_from(rgb16, "rgb16")), expected)
    np.testing.assert_array_equal(image_to_rgb(msg_from(rgb16[..., ::-1], "bgr16", bigendian=True)), expected)


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
def test_bayer_demosaic_recovers_image(pattern):
    rgb = smooth_rgb()
    out = image_to_rgb(msg_from(mosaic(rgb, pattern), f"bayer_{pattern}8", pad=4))
    err = np.abs(out.astype(int) - rgb.astype(int))[2:-2, 2:-2]
    assert err.mean() < 1.5, err.mean()
    # the same mosaic read with R and B swapped must be clearly wrong (the pattern matters)
    swapped = pattern.translate(str.maketrans("rb", "br"))
    wrong = image_to_rgb(msg_from(mosaic(rgb, pattern), f"bayer_{swapped}8"))
    assert np.abs(wrong.astype(int) - rgb.astype(int))[2:-2, 2:-2].mean() > 20


def test_bayer16_and_demosaic_helper():
    rgb = smooth_rgb()
    raw16 = mosaic(rgb, "gbrg").astype(np.uint16) * 256
    out16 = image_to_rgb(msg_from(raw16, "bayer_gbrg16"), mono16="full")
    assert np.abs(out16.astype(int) - rgb.astype(int))[2:-2, 2:-2].mean() < 2.0
    out8 = demosaic(mosaic(rgb, "rggb"), "rggb")
    assert np.abs(out8.astype(int) - rgb.astype(int))[2:-2, 2:-2].mean() < 1.5
    with pytest.raises(ImageDecodeError):
        demosaic(mosaic(rgb, "rggb"), "rgbg")


def test_yuv422_decodes_to_gray_when_chroma_neutral():
    y = np.clip(noisy_rgb()[..., 0], 16, 235)  # video-range luma
    uyvy = np.zeros((H, W, 2), np.uint8)
    uyvy[..., 0] = 128  # U and V alternate in the first byte of each pixel
    uyvy[..., 1] = y
    out = image_to_rgb(msg_from(uyvy, "uyvy")).astype(int)
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])
    expected = (y.astype(float) - 16) * 255 / 219  # BT.601 video range -> full range
    assert np.abs(out[..., 0] - expected).max() <= 1.5


def test_rclpy_style_message_and_no_aliasing():
    rgb = noisy_rgb(3)
    msg = msg_from(rgb, "rgb8", rclpy_style=True)
    out = image_to_rgb(msg)
    np.testing.assert_array_equal(out, rgb)
    out[:] = 0  # writable and independent of the message buffer
    assert bytes(msg.data[:3]) == rgb[0, 0].tobytes()


def test_rosbags_message_round_trip():
    rgb = noisy_rgb(4)
    msg = image_message(rgb, "rgb8", header(5, "cam"))
    raw = typestore().serialize_cdr(msg, "sensor_msgs/msg/Image")
    back = typestore().deserialize_cdr(raw, "sensor_msgs/msg/Image")
    np.testing.assert_array_equal(image_to_rgb(back), rgb)
    gray16 = RawImage.from_array(np.arange(12, dtype=np.dtype(">u2")).reshape(3, 4), "mono16")
    assert image_to_rgb(gray16)[2, 3, 0] == 255


@pytest.mark.parametrize("mutate,match", [
    (dict(encoding="weird42"), r"topic '/cam/image' field 'encoding': unsupported encoding 'weird42'"),
    (dict(encoding="32FC1"), r"depth encoding: use depth_to_metres"),
    (dict(height=0), r"zero-sized image \(field 'height'=0"),
    (dict(width=0), r"'width'=0"),
    (dict(step=W * 3 - 1), r"field 'step': 95 is smaller than width\*bytes_per_pixel = 32\*3 = 96"),
    (dict(data=b"\x00" * (H * W * 3 - 1)),
     r"field 'data': 2303 bytes, expected height\*step = 24\*96 = 2304"),
])
def test_bad_messages_raise_clear_errors(mutate, match):
    msg = msg_from(noisy_rgb(), "rgb8")
    for key, value in mutate.items():
        setattr(msg, key, value)
    with pytest.raises(ImageDecodeError, match=match):
        image_to_rgb(msg, topic="/cam/image")


def test_sixteen_bit_label_on_eight_bit_data():
    gray8 = noisy_rgb()[..., 0]
    msg = msg_from(gray8, "mono16")  # step = width, data = h*w: an 8-bit image labelled 16-bit
    with pytest.raises(ImageDecodeError, match=r"'mono16' is 16-bit .* sized for 8-bit pixels"):
        image_to_rgb(msg, topic="/thermal")
    msg.step = 2 * W  # step fixed but data still 8-bit sized
    with pytest.raises(ImageDecodeError, match="sized for 8-bit"):
        image_to_rgb(msg, topic="/thermal")


def compressed(img_bgr_or_gray: np.ndarray, ext: str, fmt: str) -> SimpleNamespace:
    ok, buf = cv2.imencode(ext, img_bgr_or_gray)
    assert ok
    return SimpleNamespace(format=fmt, data=buf.tobytes())


def test_compressed_png_colour_and_gray_and_jpeg():
    rgb = noisy_rgb(5)
    np.testing.assert_array_equal(image_to_rgb(compressed(rgb[..., ::-1], ".png", "png")), rgb)
    gray = rgb[..., 1]
    out = image_to_rgb(compressed(gray, ".png", "mono8; png compressed"))
    np.testing.assert_array_equal(out[..., 0], gray)
    np.testing.assert_array_equal(out[..., 2], gray)
    smooth = smooth_rgb()
    jpeg = image_to_rgb(compressed(smooth[..., ::-1], ".jpg", "rgb8; jpeg compressed bgr8"))
    assert np.abs(jpeg.astype(int) - smooth.astype(int)).mean() < 4


def test_compressed_bad_payloads():
    with pytest.raises(ImageDecodeError, match=r"topic '/c' field 'data' is empty"):
        image_to_rgb(SimpleNamespace(format="jpeg", data=b""), topic="/c")
    with pytest.raises(ImageDecodeError, match="not a decodable JPEG/PNG"):
        image_to_rgb(SimpleNamespace(format="jpeg", data=b"not an image at all"), topic="/c")
    with pytest.raises(ImageDecodeError, match="depth image"):
        image_to_rgb(SimpleNamespace(format="16UC1; compressedDepth", data=b"x" * 20), topic="/c")


def test_depth_decoding():
    mm = np.array([[0, 1000], [2500, 65535]], np.uint16)
    depth = depth_to_metres(msg_from(mm, "16UC1", pad=2))
    assert np.isnan(depth[0, 0]) and depth.dtype == np.float32
    np.testing.assert_allclose(depth[~np.isnan(depth)], [1.0, 2.5, 65.535], rtol=1e-6)
    metres = np.array([[np.nan, 1.25], [-1.0, np.inf]], np.float32)
    d32 = depth_to_metres(msg_from(metres, "32FC1"))
    assert np.isnan(d32[0, 0]) and np.isnan(d32[1, 0]) and np.isnan(d32[1, 1]) and d32[0, 1] == 1.25
    with pytest.raises(ImageDecodeError, match="not a depth encoding"):
        depth_to_metres(msg_from(noisy_rgb(), "rgb8"), topic="/d")


def test_compressed_depth():
    mm = np.array([[0, 500], [1500, 3000]], np.uint16)
    ok, png = cv2.imencode(".png", mm)
    data = struct.pack("<iff", 0, 0.0, 0.0) + png.tobytes()
    depth = depth_to_metres(SimpleNamespace(format="16UC1; compressedDepth png", data=data))
    assert np.isnan(depth[0, 0])
    np.testing.assert_allclose(depth[1], [1.5, 3.0])
