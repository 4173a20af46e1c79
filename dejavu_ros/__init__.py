"""dejavu_ros: relocalization across seasons with Deja-Vu features and contextual similarity.

Importing this package never imports rclpy; only :mod:`dejavu_ros.ros` does.
"""
__version__ = "0.1.0"
