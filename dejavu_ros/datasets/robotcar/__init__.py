"""Oxford RobotCar: raw-run conversion to rosbag2, and the RobotCar Seasons reader and manifests.

Raw runs: :func:`plan.prepare` checks a :class:`plan.ConvertOptions`, :func:`convert.convert`
writes the bag. RobotCar Seasons: :class:`seasons.SeasonsDataset` yields
:class:`seasons.SeasonsRecord`; :func:`manifest.write_manifest` turns records into a training /
evaluation manifest.
"""
