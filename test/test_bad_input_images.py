"""Bad input: image decoding and the input checks of the engine — io/images.py never trusts height/width/step/encoding; the engine refuses what the network cannot take."""
from __future__ import annotations

import math
import struct
import zlib
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from bad_input_support import (
    IMG,
    Case,
    H,
    W,
    case_params,
    check_case,
    sha256,
    small_frame,
)

from dejavu_ros.errors import DejavuError
from dejavu_ros.features.preprocess import ImageError
from dejavu_ros.io.errors import ImageDecodeError
from dejavu_ros.io.images import RawImage, image_to_rgb
from dejavu_ros.map import KeyframeMap


def rgb_msg(**changes) -> RawImage:
    msg = RawImage.from_array(small_frame(3.0), "rgb8")
    for key, value in changes.items():
        setattr(msg, key, value)
    return msg


def decode(msg) -> np.ndarray:
    return image_to_rgb(msg, topic=IMG)


def mono8_label_on_16bit_data(env):
    """16-bit rows under an 8-bit label: step = 2*width, data = height*2*width (a 640 px wide camera)."""
    gray16 = cv2.resize(small_frame(3.0)[..., 0], (640, 32)).astype(np.uint16) * 257
    msg = RawImage.from_array(gray16, "mono16")
    msg.encoding = "mono8"
    return decode(msg)


def mono16_label_on_8bit_data(env):
    msg = RawImage.from_array(small_frame(3.0)[..., 0], "mono8")
    msg.encoding = "mono16"
    return decode(msg)


def png_declaring(width: int, height: int) -> bytes:
    """A valid grey PNG of ``width``×``height`` zeros: a few dozen KB that decode to ``width*height`` bytes."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    packer, row = zlib.compressobj(1), b"\0" * (width + 1)
    pixels = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def decompression_bomb(env):
    return decode(SimpleNamespace(format="png", data=png_declaring(9000, 9000)))


def huge_image(env):
    """8000×6000 must be downscaled to features.max_side before the network, not fed whole."""
    seen = []
    extractor = env.a.engine.extractor
    real = extractor.extract
    extractor.extract = lambda image, size=None: (seen.append(image.shape), real(image, size))[1]
    try:
        image = np.ascontiguousarray(np.tile(env.a.frame, (47, 50, 1))[:6000, :8000])
        result = env.a.engine.relocalize(image, 5.0)
    finally:
        del extractor.extract
    return result, seen


def check_huge_image(env, outcome):
    result, seen = outcome
    assert result.image_size == (8000, 6000)
    assert seen == [(480, 640, 3)]  # features.max_side = 640
    assert result.status != "map_empty" and result.candidates and result.timings_ms["features"] > 0


def grayscale(env):
    gray = cv2.cvtColor(env.a.frame, cv2.COLOR_RGB2GRAY)
    return env.a.engine.relocalize(gray, 1.0), env.a.engine.relocalize(np.dstack([gray] * 3), 1.0)


def check_grayscale(env, outcome):
    gray, replicated = outcome
    assert gray.image_size == (W, H) and gray.candidates
    assert [c.keyframe_id for c in gray.candidates] == [c.keyframe_id for c in replicated.candidates]
    assert [c.cx_score for c in gray.candidates] == pytest.approx([c.cx_score for c in replicated.candidates])


def engine_still_works(env, _outcome=None):
    """The localize engine answers a good frame afterwards and its map file is untouched."""
    result = env.a.engine.relocalize(env.a.frame, 9.0)
    assert result.status in ("relocalized", "not_verified") and len(result.candidates) == 5
    assert all(math.isfinite(c.cx_score) for c in result.candidates)
    assert env.a.engine.map_size == 8 and sha256(env.a.map) == env.a.map_hash


def add_bad_pose(position, orientation):
    def action(env):
        engine = env.mapping_engine()
        env.scratch["engine"] = engine
        return engine.add_frame(env.a.frame, 1.0, position, orientation)
    return action


def skipped_then_added(env, outcome):
    assert not outcome.added and outcome.keyframe_id is None and outcome.reason.startswith("invalid_pose")
    engine = env.scratch.pop("engine")
    assert len(engine.map) == 0
    assert engine.add_frame(env.a.frame, 2.0, [1.0, 0.0, 0.0], [0, 0, 0, 1]).added  # the next good frame is kept
    engine.close()
    with KeyframeMap.open(env.tmp / "new.db") as m:
        assert len(m) == 1 and np.isfinite(m.get(m.ids()[0]).position).all()


def add_bad_covariance(env):
    engine = env.mapping_engine()
    env.scratch["engine"] = engine
    return engine.add_frame(env.a.frame, 1.0, [0.0, 0.0, 0.0], [0, 0, 0, 1], covariance=np.ones(5))


def add_with_nan_stamp(env):
    engine = env.mapping_engine()
    env.scratch["engine"] = engine
    return engine.add_frame(env.a.frame, float("nan"), [0, 0, 0], [0, 0, 0, 1])


def readonly_add(env):
    return env.a.engine.add_frame(env.a.frame, 1.0, [50.0, 0.0, 0.0], [0, 0, 0, 1])


CASES = [
    Case("image-unknown-encoding", lambda e: decode(rgb_msg(encoding="weird42")), ImageDecodeError,
         r"topic '/cam/image' field 'encoding': unsupported encoding 'weird42'; supported: .*rgb8"),
    Case("image-step-too-small", lambda e: decode(rgb_msg(step=W * 3 - 1)), ImageDecodeError,
         r"topic '/cam/image' field 'step': 479 is smaller than width\*bytes_per_pixel = 160\*3"),
    Case("image-negative-step", lambda e: decode(rgb_msg(step=-3)), ImageDecodeError, r"field 'step': -3"),
    Case("image-data-short", lambda e: decode(rgb_msg(data=b"\0" * (H * W * 3 - 1))), ImageDecodeError,
         r"field 'data': 61439 bytes, expected height\*step = 128\*480"),
    Case("image-zero-height", lambda e: decode(rgb_msg(height=0)), ImageDecodeError,
         r"topic '/cam/image': zero-sized image \(field 'height'=0"),
    Case("image-zero-width-no-data", lambda e: decode(rgb_msg(width=0, step=0, data=b"")), ImageDecodeError,
         r"'width'=0"),
    Case("image-huge-dimensions-tiny-data",
         lambda e: decode(rgb_msg(height=100_000, width=100_000, step=300_000)), ImageDecodeError,
         r"field 'data': 61440 bytes, expected height\*step = 100000\*300000"),
    Case("image-16bit-label-on-8bit-data", mono16_label_on_8bit_data, ImageDecodeError,
         r"'mono16' is 16-bit but field 'step'=160 .* sized for 8-bit pixels"),
    Case("image-8bit-label-on-16bit-data", mono8_label_on_16bit_data, ImageDecodeError,
         r"topic '/cam/image'.*'mono8'.*field 'step'=1280.*16-bit"),
    Case("image-depth-encoding-as-colour", lambda e: decode(rgb_msg(encoding="32FC1")), ImageDecodeError,
         r"field 'encoding'.*depth encoding: use depth_to_metres"),
    Case("image-yuv-odd-width",
         lambda e: decode(RawImage.from_array(np.zeros((4, 5, 2), np.uint8), "yuv422")), ImageDecodeError,
         r"topic '/cam/image' field 'width': 5 .*yuv422"),
    Case("image-compressed-garbage",
         lambda e: decode(SimpleNamespace(format="jpeg", data=b"\xff\xd8junk" * 40)), ImageDecodeError,
         r"topic '/cam/image' field 'data': 240 bytes are not a decodable JPEG/PNG"),
    Case("image-compressed-empty", lambda e: decode(SimpleNamespace(format="png", data=b"")),
         ImageDecodeError,
         r"field 'data' is empty \(format 'png'\)"),
    Case("image-compressed-decompression-bomb", decompression_bomb, ImageDecodeError,
         r"topic '/cam/image' field 'data': .*9000x9000"),
    Case("engine-huge-image-downscaled", huge_image, None, after=check_huge_image),
    Case("engine-grayscale-into-rgb-model", grayscale, None, after=check_grayscale),
    Case("engine-one-channel-3d", lambda e: e.a.engine.relocalize(np.zeros((H, W, 1), np.uint8), 1.0),
         ImageError,
         r"expected H×W×3 RGB, got shape \(128, 160, 1\)", after=engine_still_works),
    Case("engine-zero-size-image", lambda e: e.a.engine.relocalize(np.zeros((0, W, 3), np.uint8), 1.0),
         ImageError,
         r"zero-size image", after=engine_still_works),
    Case("engine-not-an-array", lambda e: e.a.engine.relocalize([[1, 2, 3]], 1.0), ImageError,
         r"expected a numpy array, got list", after=engine_still_works),
    Case("engine-nan-image", lambda e: e.a.engine.relocalize(np.full((H, W, 3), np.nan), 1.0), ImageError,
         r"NaN", after=engine_still_works),
    Case("engine-int64-image-needing-downscale",
         lambda e: e.a.engine.relocalize(np.zeros((700, 900, 3), np.int64), 1.0), ImageError, r"int64",
         after=engine_still_works),
    Case("engine-nan-pose", add_bad_pose([np.nan, 0, 0], [0, 0, 0, 1]), None, after=skipped_then_added),
    Case("engine-inf-quaternion", add_bad_pose([0, 0, 0], [0, 0, np.inf, 1]), None, after=skipped_then_added),
    Case("engine-zero-quaternion", add_bad_pose([0, 0, 0], [0, 0, 0, 0]), None, after=skipped_then_added),
    Case("engine-nan-stamp", add_with_nan_stamp, DejavuError, r"keyframe selection: stamp is nan"),
    Case("engine-covariance-wrong-shape", add_bad_covariance, None, after=skipped_then_added),
    Case("engine-append-to-read-only-map", readonly_add, DejavuError, r"needs a map opened for writing",
         after=engine_still_works),
]


@pytest.mark.parametrize("case", case_params(CASES))
def test_bad_input(case, assets, tmp_path):
    check_case(case, assets, tmp_path)
