"""The camera's pose on the robot (its extrinsic), from the bag's ``/tf_static`` or given by hand.

A map stores the pose of the *camera optical frame* (z forward, x right, y down, REP 103) in the
map frame. Robots log the pose of their base (odometry, SLAM); with the extrinsic T_base_camera
the camera pose is T_map_camera = T_map_base · T_base_camera. ``/tf_static`` usually holds the
chain base_link → … → camera_optical_frame; the image header's ``frame_id`` names the camera end.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
from scipy.spatial.transform import Rotation

from .errors import PoseMessageError
from .poses import PoseSample

TF_STATIC_TYPE = "tf2_msgs/msg/TFMessage"


@dataclass(frozen=True)
class Extrinsic:
    """T_base_camera: the camera optical frame's pose in the robot's base frame."""

    translation: np.ndarray  # (3,) metres
    rotation: Rotation
    base_frame: str = ""
    camera_frame: str = ""

    @classmethod
    def from_xyz_rpy(cls, values: Sequence[float], base_frame: str = "", camera_frame: str = "") -> "Extrinsic":
        """``x y z roll pitch yaw`` (metres, radians; fixed-axis roll about x, then pitch y, then yaw z)."""
        v = np.asarray(values, np.float64)
        if v.shape != (6,) or not np.all(np.isfinite(v)):
            raise PoseMessageError(f"camera pose must be 6 finite numbers x y z roll pitch yaw, got {list(values)}")
        return cls(v[:3].copy(), Rotation.from_euler("xyz", v[3:]), base_frame, camera_frame)

    def apply(self, base: PoseSample) -> PoseSample:
        """The camera's pose for a base pose (covariance carried over unchanged, to first order)."""
        r_base = Rotation.from_quat(base.orientation)
        position = base.position + r_base.apply(self.translation)
        orientation = (r_base * self.rotation).as_quat()
        return PoseSample(stamp_ns=base.stamp_ns, position=position, orientation=orientation,
                          covariance=base.covariance, frame_id=base.frame_id,
                          child_frame_id=self.camera_frame or base.child_frame_id)


def _edges(messages: Iterable[Any]) -> dict[str, tuple[str, np.ndarray, Rotation]]:
    """child frame → (parent frame, translation, rotation) from TFMessage messages."""
    out = {}
    for msg in messages:
        for t in msg.transforms:
            tr, q = t.transform.translation, t.transform.rotation
            out[str(t.child_frame_id).lstrip("/")] = (str(t.header.frame_id).lstrip("/"),
                                                      np.array([tr.x, tr.y, tr.z], np.float64),
                                                      Rotation.from_quat([q.x, q.y, q.z, q.w]))
    return out


def _to_root(frame: str, edges: dict) -> list[str]:
    chain = [frame]
    while chain[-1] in edges and len(chain) <= len(edges) + 1:
        chain.append(edges[chain[-1]][0])
    return chain


def _from_root(chain: list[str], edges: dict) -> tuple[np.ndarray, Rotation]:
    """T_root_frame along ``chain`` (frame first, root last)."""
    t, r = np.zeros(3), Rotation.identity()
    for child in reversed(chain[:-1]):
        _parent, tc, rc = edges[child]
        t, r = t + r.apply(tc), r * rc
    return t, r


def extrinsic_from_tf(messages: Iterable[Any], base_frame: str, camera_frame: str) -> Extrinsic:
    """T_base_camera composed along the static transform tree (either frame may be the ancestor)."""
    edges = _edges(messages)
    base, camera = base_frame.lstrip("/"), camera_frame.lstrip("/")
    up_base, up_cam = _to_root(base, edges), _to_root(camera, edges)
    common = next((f for f in up_cam if f in up_base), None)
    if not base or not camera or common is None:
        known = ", ".join(sorted(set(edges) | {p for p, _, _ in edges.values()})) or "none"
        raise PoseMessageError(f"/tf_static links no path from '{base_frame}' to '{camera_frame}' "
                               f"(frames in it: {known}); give --camera-pose x y z roll pitch yaw instead")
    t_cb, r_cb = _from_root(up_base[: up_base.index(common) + 1], edges)  # T_common_base
    t_cc, r_cc = _from_root(up_cam[: up_cam.index(common) + 1], edges)  # T_common_camera
    rotation = r_cb.inv() * r_cc
    translation = r_cb.inv().apply(t_cc - t_cb)
    return Extrinsic(translation, rotation, base, camera)
