"""Offline replay: rosbag2 in, keyframe maps and results bags out (no ROS install needed).

Why a folder of its own: it is the one place where io (bags, images) meets the engine, the same
role the rclpy node plays online; the node and the replay publish through the same builders.
"""
