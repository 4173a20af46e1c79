"""One camera frame through the feature stage: the representation both the map and the query use.

Building a keyframe and answering a query start the same way — downscale huge images, run DVF,
pool a global descriptor, make the CX grid — so that work lives here once.

Pixel frame: everything that leaves this module (keyframe corners, intrinsics, 3-D points' image
positions) is in the pixels of the original image, whatever size the network saw it at
(``features.max_side``); :meth:`FrameFeatures.to_original` converts network pixels.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..config import DejavuConfig
from ..features.extractor import FeatureExtractor
from ..features.keypoint_head import head_fits
from ..features.preprocess import check_rgb, limit_size, to_original_xy, to_resized_xy
from ..geometry import CameraIntrinsics
from ..map.keyframe import Keyframe
from ..map.thumbnail import make_thumbnail
from ..matching.config import MatchingConfig
from ..matching.dense_matching import search_layout
from ..matching.dense_scale import query_scale
from ..matching.pipeline import corner_features
from ..matching.refine import refine_uses_head, refine_uses_sift
from ..matching.sift import sift_features, uses_sift
from ..similarity.global_descriptor import global_descriptor
from ..similarity.grid import to_grid


@dataclass
class FrameFeatures:
    """DVF output of one frame, at the (possibly downscaled) resolution the network saw."""

    rgb: np.ndarray  # the image the network saw (H×W×3 uint8)
    scale: float  # network pixels per original pixel (≤ 1)
    dense: torch.Tensor  # n×H×W on the extractor's device
    global_desc: torch.Tensor  # (D,)
    grid: torch.Tensor  # n×h×w
    original_size: tuple[int, int] = (0, 0)  # (width, height) of the image as it arrived

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) the network saw."""
        return int(self.rgb.shape[1]), int(self.rgb.shape[0])

    def to_original(self, xy: np.ndarray) -> np.ndarray:
        """Network pixels → original image pixels."""
        return to_original_xy(xy, self.size, self.original_size)

    def to_network(self, xy: np.ndarray) -> np.ndarray:
        """Original image pixels → network pixels."""
        return to_resized_xy(xy, self.original_size, self.size)

    def pyramid(self, extractor: FeatureExtractor, scales) -> list[torch.Tensor]:
        """Dense maps of the network image at each of ``scales`` (1.0 = :attr:`dense` itself), made
        once per frame: the dense search at several scales finds a keyframe corner in a query seen
        nearer (scale < 1 shrinks it back) or farther (> 1) than the keyframe was."""
        cache = self.__dict__.setdefault("_pyramid", {})
        out = []
        for s in scales:
            if abs(float(s) - 1.0) < 1e-6:
                out.append(self.dense)
                continue
            if s not in cache:
                w, h = self.size
                size = (max(16, round(w * s)), max(16, round(h * s)))
                cache[s] = extractor.extract(cv2.resize(self.rgb, size, interpolation=cv2.INTER_AREA if s < 1
                                                        else cv2.INTER_LINEAR))
            out.append(cache[s])
        return out

    def search_layout(self, dense: torch.Tensor, cfg: MatchingConfig) -> torch.Tensor | None:
        """The dense search's layout of one of this frame's maps (:attr:`dense` or a pyramid level),
        made once per frame and map: every keyframe the frame is verified against searches the same
        maps."""
        cache = self.__dict__.setdefault("_layouts", {})
        key = (id(dense), int(cfg.dense_stride), cfg.dense_coarse)
        if key not in cache or cache[key][0] is not dense:  # the map itself is kept, so its id stays its own
            cache[key] = (dense, search_layout(dense, cfg))
        return cache[key][1]

    def sift(self, max_features: int) -> tuple[np.ndarray, np.ndarray]:
        """SIFT keypoints (network pixels) and descriptors of the network image, made once per frame."""
        cache = self.__dict__.setdefault("_sift", {})
        if max_features not in cache:
            cache[max_features] = sift_features(self.rgb, max_features)
        return cache[max_features]

    def scale_against(self, extractor: FeatureExtractor, keyframe_rgb: np.ndarray | None) -> float | None:
        """The scale to search this frame at for a keyframe it shows nearer or farther, from the dense
        scale search between the keyframe's image (its thumbnail) and this frame shrunk to its size
        (matching/dense_scale.py: query_scale); None when about 1, unsure, or no image is stored."""
        if keyframe_rgb is None:
            return None
        size = (int(keyframe_rgb.shape[1]), int(keyframe_rgb.shape[0]))
        cache = self.__dict__.setdefault("_small_dense", {})
        if size not in cache:
            cache[size] = extractor.extract(cv2.resize(self.rgb, size, interpolation=cv2.INTER_AREA))
        return query_scale(cache[size], extractor.extract(keyframe_rgb))


def describe(image: np.ndarray, extractor: FeatureExtractor, cfg: DejavuConfig,
             grid_shape: tuple[int, int] | None = None) -> FrameFeatures:
    """Run the feature stage on one RGB frame.

    ``grid_shape`` forces the CX grid to a map's shape (CX is alignment-free, so a small aspect
    change is harmless, and one shape lets all keyframes be compared in one batch).
    """
    image = check_rgb(image)
    rgb, scale = limit_size(image, cfg.features.max_side)
    dense = extractor.extract(rgb)
    sim = cfg.similarity
    grid = to_grid(dense, sim.grid_stride, sim.grid_mode, sim.grid_max_side)
    if grid_shape is not None and tuple(grid.shape[-2:]) != tuple(grid_shape):
        grid = F.interpolate(grid[None], size=tuple(grid_shape), mode="bilinear", align_corners=True)[0]
    gdesc = global_descriptor(dense, sim.global_cells)[0]
    return FrameFeatures(rgb=rgb, scale=scale, dense=dense, global_desc=gdesc, grid=grid,
                         original_size=(int(image.shape[1]), int(image.shape[0])))


def usable_camera(camera: CameraIntrinsics | None) -> CameraIntrinsics | None:
    """The intrinsics when they are valid, else None."""
    return camera if camera is not None and camera.valid else None


def points_from_depth(xy: np.ndarray, depth: np.ndarray, camera: CameraIntrinsics) -> np.ndarray:
    """Back-project corners with an aligned depth image (metres, NaN = unknown) → (K, 3) camera frame."""
    height, width = depth.shape[:2]
    sx, sy = width / camera.width, height / camera.height  # depth may differ in size from the intrinsics
    k = camera.k
    cols = np.clip(np.round(xy[:, 0] * sx).astype(int), 0, width - 1)
    rows = np.clip(np.round(xy[:, 1] * sy).astype(int), 0, height - 1)
    z = depth[rows, cols].astype(np.float64)
    z[~np.isfinite(z) | (z <= 0)] = np.nan
    x = (xy[:, 0] - k[0, 2]) / k[0, 0] * z
    y = (xy[:, 1] - k[1, 2]) / k[1, 1] * z
    return np.stack([x, y, z], axis=1).astype(np.float32)


def make_keyframe(frame: FrameFeatures, stamp: float, position, orientation, cfg: DejavuConfig, *,
                  covariance=None, camera: CameraIntrinsics | None = None, depth: np.ndarray | None = None,
                  source: str = "", frame_id: str | None = None) -> Keyframe:
    """A map row from a described frame: corners, their descriptors, optional 3-D points.

    Corners are found on the image the network saw and stored, with the intrinsics, in the
    original image's pixels (one pixel frame for everything the map and the results hold).
    """
    match_cfg = cfg.matching
    net_xy, desc = corner_features(frame.rgb, frame.dense, match_cfg)
    xy = frame.to_original(net_xy)
    sift_xy = sift_desc = None
    if uses_sift(match_cfg) or refine_uses_sift(match_cfg):
        sift_net, sift_desc = frame.sift(match_cfg.max_corners)
        sift_xy = frame.to_original(sift_net)
    cam = usable_camera(camera)
    with_depth = depth is not None and cam is not None
    points = points_from_depth(xy, depth, cam) if with_depth else None
    head_xy = head_desc = head_points = None
    if refine_uses_head(match_cfg) and head_fits(match_cfg, frame.dense.shape[0]):  # matching/refine.py
        net_head, head = corner_features(frame.rgb, frame.dense, dataclasses.replace(match_cfg, keypoints="dvf_head"))
        head_xy, head_desc = frame.to_original(net_head), head.cpu().numpy().astype(np.float16)
        head_points = points_from_depth(head_xy, depth, cam) if with_depth else None
    return Keyframe(
        stamp=float(stamp), position=np.asarray(position, np.float64), orientation=np.asarray(orientation, np.float64),
        global_desc=frame.global_desc.cpu().numpy().astype(np.float32),
        grid=frame.grid.cpu().numpy().astype(np.float16),
        keypoints=np.asarray(xy, np.float32), descriptors=desc.cpu().numpy().astype(np.float16),
        image_size=frame.original_size, frame_id=frame_id or cfg.keyframes.frame_id, source=source,
        covariance=None if covariance is None else np.asarray(covariance, np.float64).reshape(6, 6),
        points3d=points, camera_k=None if cam is None else np.asarray(cam.k, np.float64),
        thumbnail=make_thumbnail(frame.rgb, cfg.keyframes.thumbnail_side, cfg.keyframes.thumbnail_quality),
        sift_keypoints=sift_xy, sift_descriptors=sift_desc,
        head_keypoints=None if head_xy is None else np.asarray(head_xy, np.float32), head_descriptors=head_desc,
        head_points3d=head_points)
