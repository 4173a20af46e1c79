"""The README's main job, end to end on generated data: two bags → map → relocalization → plots.

1. Render the street by day every ``map_step`` metres and by night every ``query_step`` metres
   (offset, so no query stands exactly on a keyframe), writing each traversal as a rosbag2 mcap
   with sensor_msgs/Image, CameraInfo and nav_msgs/Odometry (ground truth).
2. ``build-map`` from the day bag, ``relocalize`` the night bag against it (results bag + JSON).
3. Plot where each night frame was placed against where it really was.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import DejavuConfig
from ..features.extractor import FeatureExtractor
from ..geometry import CameraIntrinsics
from ..errors import DejavuError
from ..io.errors import BagError
from ..map.store import KeyframeMap
from ..output.bag_writer import BagWriter, remove_bag
from ..output.messages import MessageTypes, header_msg, image_msg, pose_msg
from ..replay.build import build_map_from_bag
from ..replay.relocalize import relocalize_bag
from ..replay.report import format_summary
from .world import FRAME_WIDTH, HEIGHT, PX_PER_M, make_street, render

IMAGE_TOPIC = "/camera/image_raw"
#: shortest route the demo accepts (a few keyframes and queries), and the recall tolerance of its plots
MIN_LENGTH_M = 10.0
TOLERANCE_M = 5.0
INFO_TOPIC = "/camera/camera_info"
ODOM_TOPIC = "/odom"
#: the camera looks sideways (+y in the odometry frame): x_cam = -y... expressed as one fixed quaternion
SIDE_LOOKING = np.array([-0.5, 0.5, -0.5, 0.5])


@dataclass
class DemoSettings:
    length_m: float = 150.0
    map_step_m: float = 1.0
    query_step_m: float = 3.0
    query_offset_m: float = 0.5
    query_condition: str = "night"
    seed: int = 7
    odometry: bool = False  # the query bag's /odom feeds route localization (only the distance travelled)


def camera_intrinsics() -> CameraIntrinsics:
    # the facade stands 10 m away; PX_PER_M pixels per metre there
    f = PX_PER_M * 10.0
    return CameraIntrinsics.from_fxfycxcy(f, f, FRAME_WIDTH / 2, HEIGHT / 2, FRAME_WIDTH, HEIGHT, "camera")


def write_traversal(path: Path, street, positions: np.ndarray, condition: str, seed: int,
                    progress: bool = False) -> int:
    """One traversal as a bag: image + camera_info + odometry per position, 10 Hz stamps."""
    from tqdm import tqdm

    mt = MessageTypes.from_rosbags()
    rng = np.random.default_rng(seed)
    cam = camera_intrinsics()
    with BagWriter(path) as bag:
        bag.add_topic(IMAGE_TOPIC, "sensor_msgs/msg/Image")
        bag.add_topic(INFO_TOPIC, "sensor_msgs/msg/CameraInfo")
        bag.add_topic(ODOM_TOPIC, "nav_msgs/msg/Odometry")
        bag.set_metadata("condition", condition)
        for i, x in enumerate(tqdm(positions, desc=f"write {path.name}", unit="frame", disable=not progress,
                                   leave=False)):
            stamp = 1_700_000_000_000_000_000 + i * 100_000_000
            rgb = render(street, float(x), condition, rng)
            k = cam.k
            info = mt.new("sensor_msgs/msg/CameraInfo", header=header_msg(mt, stamp, "camera"), height=HEIGHT,
                          width=FRAME_WIDTH, distortion_model="plumb_bob", d=np.zeros(5),
                          k=k.reshape(-1), r=np.eye(3).reshape(-1),
                          p=np.hstack([k, np.zeros((3, 1))]).reshape(-1))
            odom = mt.new("nav_msgs/msg/Odometry", header=header_msg(mt, stamp, "map"), child_frame_id="camera",
                          pose=mt.new("geometry_msgs/msg/PoseWithCovariance",
                                      pose=pose_msg(mt, [float(x), 0.0, 0.0], SIDE_LOOKING),
                                      covariance=np.zeros(36)))
            bag.write(INFO_TOPIC, stamp, info)
            bag.write(ODOM_TOPIC, stamp, odom)
            bag.write(IMAGE_TOPIC, stamp, image_msg(mt, rgb, stamp, "camera"))
    return len(positions)


def run_demo(out: Path, cfg: DejavuConfig, settings: DemoSettings | None = None,
             extractor: FeatureExtractor | None = None, progress: bool = True) -> dict:
    s = settings or DemoSettings()
    out.mkdir(parents=True, exist_ok=True)
    map_bag, query_bag = out / "map_day", out / f"query_{s.query_condition}"
    for stale in (map_bag, query_bag, out / "map.db", out / "results"):
        _remove_previous(stale)
    street = make_street(s.length_m, s.seed)
    map_positions = np.arange(0.0, s.length_m, s.map_step_m)
    query_positions = np.arange(s.query_offset_m, s.length_m, s.query_step_m)
    write_traversal(map_bag, street, map_positions, "day", s.seed + 1, progress)
    write_traversal(query_bag, street, query_positions, s.query_condition, s.seed + 2, progress)

    extractor = extractor or FeatureExtractor.from_config(cfg.features)
    built = build_map_from_bag(map_bag, out / "map.db", IMAGE_TOPIC, ODOM_TOPIC, cfg, extractor,
                               camera_info_topic=INFO_TOPIC, progress=progress)
    cfg.node.map_path = str(out / "map.db")
    replay = relocalize_bag(query_bag, cfg, IMAGE_TOPIC, extractor=extractor, out_bag=out / "results",
                            report=out / "frames.jsonl", camera_info_topic=INFO_TOPIC, gt_pose_topic=ODOM_TOPIC,
                            odom_topic=ODOM_TOPIC if s.odometry else None, progress=progress)
    summary = replay.as_dict()
    summary["map"] = built.as_dict()
    summary["model"] = extractor.source
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    _plot(out / "trajectory.png", replay.records, query_positions, s, TOLERANCE_M)
    _plot_frames(out / "frames.png", replay.records, s, TOLERANCE_M)
    return summary


def _remove_previous(path: Path) -> None:
    """Delete a previous run's output; refuse anything the demo did not write (nothing else is lost)."""
    if not path.exists():
        return
    if path.suffix == ".db":
        try:
            KeyframeMap.open(path, mode="r").close()
        except DejavuError:
            raise DejavuError(f"{path} exists and is not a keyframe map a previous demo wrote; "
                              "choose another --out") from None
        path.unlink()
        return
    try:
        remove_bag(path)
    except BagError:
        raise DejavuError(f"{path} exists and is not a bag a previous demo wrote; choose another --out") from None


def _plot(path: Path, records, truth: np.ndarray, s: DemoSettings, tolerance_m: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    n = len(records)
    frames = np.arange(n)
    ax.fill_between(frames, truth[:n] - tolerance_m, truth[:n] + tolerance_m, color="0.85",
                    label=f"true position ± {tolerance_m:g} m")
    ax.plot(frames, truth[:n], "k-", lw=1, label="true position")
    top1 = [(i, r.top1_position[0]) for i, r in enumerate(records) if r.top1_position]
    pose = [(i, r.pose_position[0]) for i, r in enumerate(records) if r.pose_position]
    if top1:
        ax.scatter(*zip(*top1), s=10, c="tab:orange", label="best CX candidate")
    if pose:
        ax.scatter(*zip(*pose), s=26, marker="x", c="tab:green", label="published pose")
    ax.set_xlabel(f"{s.query_condition} frame")
    ax.set_ylabel("metres along the route")
    ax.set_title(f"{n} {s.query_condition} frames against a day map ({len(pose)} published)")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_frames(path: Path, records, s: DemoSettings, tolerance_m: float) -> None:
    """Per frame: the reported keyframe's CX score, confidence and inliers, published or refused."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(records)
    frames = np.arange(n)
    published = np.array([r.status == "relocalized" for r in records])
    right = np.array([r.top1_error_m is not None and r.top1_error_m <= tolerance_m for r in records])
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    top.plot(frames, [r.confidence for r in records], "-", color="0.5", lw=0.8)
    top.scatter(frames[published], [r.confidence for r in np.array(records)[published]], c="tab:green",
                s=18, label="published")
    top.scatter(frames[~published], [r.confidence for r in np.array(records)[~published]], c="tab:red",
                s=10, marker="x", label="refused")
    top.plot(frames, [np.nan if r.cx_score is None else r.cx_score for r in records], ":", color="tab:blue",
             label="CX score")
    top.set_ylabel("confidence / CX")
    top.set_ylim(-0.02, 1.02)
    top.legend(fontsize=7, loc="upper right")
    bottom.bar(frames, [r.inliers for r in records], color=np.where(published, "tab:green", "0.7"))
    bottom.scatter(frames[right], np.zeros(right.sum()), marker="|", c="black", s=40,
                   label=f"best CX candidate within {tolerance_m:g} m")
    bottom.set_ylabel("inliers")
    bottom.set_xlabel(f"{s.query_condition} frame")
    bottom.legend(fontsize=7, loc="upper right")
    fig.suptitle(f"{s.query_condition} frames: what the trust decision saw", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def format_demo(summary: dict, out: Path) -> str:
    return (format_summary(summary)
            + f"\nmap: {summary['map']['keyframes_added']} keyframes from {summary['map']['frames_read']} day frames"
            + f"\nmodel: {summary['model']}\nwrote {out}/summary.json, trajectory.png, frames.png, results/ (bag), "
              "frames.jsonl")
