"""The ROS 2 side: the relocalizer node (the only code that imports rclpy) and its pure-Python helpers."""
