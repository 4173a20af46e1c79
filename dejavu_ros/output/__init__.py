"""What leaves the package: ROS 2 messages built from a result (for the node and the results bag
alike), the debug image, and rosbag2 writing. :mod:`dejavu_ros.io` is the input side.
"""
