"""Bad input: RobotCar files — malformed rows are skipped and reported as file:line; bad headers, LUTs and tags are errors."""
from __future__ import annotations

import re

import numpy as np
import pytest
from bad_input_support import Case, case_params, check_case, cli, write_text

from dejavu_ros.datasets.robotcar.errors import RobotCarFormatError
from dejavu_ros.datasets.robotcar.geometry import read_lut
from dejavu_ros.datasets.robotcar.layout import read_tags, read_timestamps
from dejavu_ros.datasets.robotcar.poses import read_ins, read_vo
from dejavu_ros.datasets.robotcar.problems import ProblemLog
from dejavu_ros.datasets.robotcar.seasons import read_pose_file

INS_HEADER = ("timestamp,ins_status,latitude,longitude,altitude,northing,easting,down,utm_zone,"
              "velocity_north,velocity_east,velocity_down,roll,pitch,yaw")


def ins_rows(env):
    good = "{t},INS_SOLUTION_GOOD,51.7,-1.2,110,5735000,620000,-110,30U,1,0,0,0,0,0.5"
    lines = [INS_HEADER, good.format(t=100), "200,INS_SOLUTION_GOOD,51.7",
             good.format(t=300).replace("51.7", "x"), good.format(t=400).replace("5735000", "nan"),
             good.format(t=50), good.format(t=500)]
    path = write_text("ins.csv", "\n".join(lines) + "\n")(env)
    problems = ProblemLog()
    return [row.stamp_us for row in read_ins(path, problems)], problems


def check_ins_rows(env, outcome):
    stamps, problems = outcome
    assert stamps == [100, 500]
    text = "\n".join(problems.messages)
    for line, what in [(3, "expected 15 columns, got 3"), (4, "not a number"), (5, "non-finite"),
                       (6, "timestamp 50 is not after 100")]:
        assert re.search(rf"ins\.csv:{line}: {what}", text), text


def vo_rows(env):
    lines = ["source_timestamp,destination_timestamp,x,y,z,roll,pitch,yaw", "10,20,1,0,0,0,0,0", "20,30,1,0",
             "30,40,1,0,0,0,0,inf", "40,50,1,0,0,0,0,0"]
    problems = ProblemLog()
    poses = list(read_vo(write_text("vo.csv", "\n".join(lines) + "\n")(env), problems))
    return poses, problems


def check_vo_rows(env, outcome):
    poses, problems = outcome
    assert [p.stamp_us for p in poses] == [10, 40] and poses[-1].transform[0, 3] == pytest.approx(2.0)
    assert any("vo.csv:3: expected 8 columns" in m for m in problems.messages)
    assert any("vo.csv:4: non-finite" in m for m in problems.messages)


def timestamp_rows(env):
    path = write_text("stereo.timestamps", "100 1\nabc 1\n90 1\n200 2\n")(env)
    problems = ProblemLog()
    return [e.stamp_us for e in read_timestamps(path, problems)], problems


def check_timestamp_rows(env, outcome):
    stamps, problems = outcome
    assert stamps == [100, 200]
    assert problems.messages[0].endswith("stereo.timestamps:2: expected '<timestamp> <chunk>', got 'abc 1'")
    assert problems.messages[1].endswith("stereo.timestamps:3: timestamp 90 is not after 100")


def seasons_pose_rows(env):
    body = " ".join(["1"] * 12)
    text = f"a.jpg {body}\nb.jpg 1 2 3\nc.jpg {' '.join(['x'] * 12)}\nd.jpg {body.replace('1', 'nan', 1)}\n"
    problems = ProblemLog()
    return read_pose_file(write_text("poses.txt", text)(env), problems), problems


def check_seasons_pose_rows(env, outcome):
    poses, problems = outcome
    assert list(poses) == ["a.jpg"]
    assert [m.split("poses.txt:")[1][:2] for m in problems.messages] == ["2:", "3:", "4:"]
    assert "expected 12 or 16 finite numbers after the name, got 3" in problems.messages[0]
    assert "non-numeric pose values" in problems.messages[1]


def lut_file(values: np.ndarray):
    def action(env):
        values.astype(np.float64).tofile(env.tmp / "cam_distortion_lut.bin")
        return read_lut(env.tmp / "cam_distortion_lut.bin", 4, 3)
    return action


CASES = [
    Case("robotcar-ins-malformed-rows", ins_rows, None, after=check_ins_rows),
    Case("robotcar-vo-malformed-rows", vo_rows, None, after=check_vo_rows),
    Case("robotcar-timestamps-malformed", timestamp_rows, None, after=check_timestamp_rows),
    Case("robotcar-seasons-pose-rows", seasons_pose_rows, None, after=check_seasons_pose_rows),
    Case("robotcar-ins-header-missing", lambda e: list(read_ins(write_text("ins.csv", "time,lat\n1,2\n")(e),
                                                                  ProblemLog())),
         RobotCarFormatError, r"ins\.csv:1: header lacks column\(s\) timestamp, ins_status"),
    Case("robotcar-lut-wrong-size", lut_file(np.zeros(10)), RobotCarFormatError,
         r"cam_distortion_lut\.bin has 80 bytes; images of 4x3 need 2\*4\*3 float64 = 192 bytes"),
    Case("robotcar-lut-nan", lut_file(np.full(24, np.nan)), RobotCarFormatError,
         r"lut\.bin contains NaN/Inf"),
    Case("robotcar-tags-not-a-list", lambda e: read_tags(write_text("tags.yaml", "night: true\n")(e)),
         RobotCarFormatError, r"tags file .*tags\.yaml: expected a YAML list"),
    Case("robotcar-origin-flag", lambda e: cli("convert-robotcar", e.tmp, "--camera", "stereo/centre",
                                               "--models", e.tmp, "--out", e.tmp / "o.mcap",
                                               "--origin", "1,2"),
         2,
         r"--origin '1,2': expected three numbers N,E,D"),
]


@pytest.mark.parametrize("case", case_params(CASES))
def test_bad_input(case, assets, tmp_path):
    check_case(case, assets, tmp_path)
