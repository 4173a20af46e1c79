"""The node's topics and services by name and type, in one place (no rclpy here).

The node creates its subscriptions and publishers from these tables, the README documents them
(a test holds the two together), and the results bag of the offline replay uses the same
``~/`` names under ``/relocalizer``.
"""
from __future__ import annotations

from ..output.messages import DIAGNOSTICS_TYPE, RESULT_TOPICS

#: topic → type the node subscribes to (which ones depends on the mode; README "Subscribed topics")
SUBSCRIBED = {
    "image": "sensor_msgs/msg/Image",
    "image/compressed": "sensor_msgs/msg/CompressedImage",
    "camera_info": "sensor_msgs/msg/CameraInfo",
    "odom": "nav_msgs/msg/Odometry",
    "pose": "geometry_msgs/msg/PoseWithCovarianceStamped",
    "/tf_static": "tf2_msgs/msg/TFMessage",
}
#: topic → type the node publishes (``initialpose`` and ``/tf`` only when enabled)
PUBLISHED = {
    **{f"~/{name}": msgtype for name, msgtype in RESULT_TOPICS.items()},
    "/diagnostics": DIAGNOSTICS_TYPE,
    "initialpose": "geometry_msgs/msg/PoseWithCovarianceStamped",
    "/tf": "tf2_msgs/msg/TFMessage",
}
#: service → type
SERVICES = {name: "std_srvs/srv/Trigger" for name in ("~/save_map", "~/reload_map", "~/relocalize_once",
                                                      "~/relocalize")}
