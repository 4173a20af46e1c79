"""rosbag2 reading/writing, image and CameraInfo conversion, pose lookup, RobotCar tooling.

Modules: :mod:`.images` (messages -> RGB/depth arrays), :mod:`.camera_info`, :mod:`.bag_reader`
and :mod:`.bag_writer` (rosbags, with :func:`.typestore.typestore` the one type store),
:mod:`.poses` (pose messages, stamp lookup), :mod:`.robotcar` (raw-run conversion, RobotCar
Seasons reader, manifests). Nothing is imported here, so importing one module stays cheap.
"""
