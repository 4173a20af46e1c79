"""A synthetic RobotCar Seasons folder in the official layout (no tests here)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

T0 = 1417176458000000
REAR_EXTRINSICS = np.array([[-1.0, 0, 0, -2.0], [0, -1.0, 0, 0.1], [0, 0, 1.0, 0.3], [0, 0, 0, 1.0]])


def pose_at(x: float, yaw_sign: float = 1.0) -> np.ndarray:
    pose = np.eye(4)
    pose[:3, :3] = np.diag([yaw_sign, yaw_sign, 1.0])
    pose[:3, 3] = [x, 0.5 * x, 2.0]
    return pose


def write_image(path: Path, colour_rgb) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.zeros((32, 48, 3), np.uint8)
    image[:] = colour_rgb[::-1]  # OpenCV writes BGR
    cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 100])


def make_seasons(root: Path) -> dict[str, list[float]]:
    """Reference drives x = 0..40 m and back (a loop); night rear has poses, night left has none."""
    xs = {"overcast-reference": [float(x) for x in range(0, 41, 2)] + [float(x) for x in range(39, -1, -3)],
          "night": [1.0, 9.0, 21.0, 39.0, 100.0]}
    lines = ["# name then a row-major 3x4 camera-to-world matrix",
             "night/rear/broken.jpg 1 2 3"]
    for condition, positions in xs.items():
        for i, x in enumerate(positions):
            name = f"{condition}/rear/{T0 + i * 250_000}.jpg"
            write_image(root / "images" / name, (200, 30, 10))
            values = " ".join(f"{v:.6f}" for v in pose_at(x)[:3].ravel())
            lines.append(f"{name} {values}")
    for i in range(3):
        write_image(root / "images" / "night" / "left" / f"{T0 + i * 250_000}.jpg", (10, 30, 200))
    (root / "robotcar_v2_train.txt").write_text("\n".join(lines) + "\n")
    (root / "intrinsics").mkdir()
    (root / "intrinsics" / "rear_intrinsics.txt").write_text(
        "fx 400.000000\nfy 401.5\ncx 508.222931\ncy 498.187378\n")
    (root / "intrinsics" / "left_intrinsics.txt").write_text("fx 400\nfy 400\ncx 500.107605\ncy 511.461426\n")
    (root / "extrinsics").mkdir()
    (root / "extrinsics" / "rear_extrinsics.txt").write_text(
        "\n".join(",".join(f"{v:.6f}" for v in row) for row in REAR_EXTRINSICS) + "\n")
    return xs
