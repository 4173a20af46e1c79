"""The input side: rosbag2 reading, image and CameraInfo decoding, pose lookup.

Modules: :mod:`.images` (messages and files -> RGB/depth arrays), :mod:`.camera_info`,
:mod:`.bag_reader` (rosbags, with :func:`.typestore.typestore` the one type store), :mod:`.poses`
(pose messages, stamp lookup), :mod:`.mcap_salvage` (truncated bags). What leaves the package
(messages, debug images, bag writing) is in :mod:`dejavu_ros.output`; data-set tooling (manifests,
RobotCar) in :mod:`dejavu_ros.datasets`. Nothing is imported here, so importing one module stays cheap.
"""
