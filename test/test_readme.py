"""The README documents what the package really has: the node's topics and services, the commands."""
from __future__ import annotations

import re

from conftest import REPO
from dejavu_ros.cli.main import _available
from dejavu_ros.ros.topics import PUBLISHED, SERVICES, SUBSCRIBED

README = (REPO / "README.md").read_text()


def table_after(heading: str) -> dict[str, str]:
    """First column → second column of the first table under ``heading`` (backticks stripped)."""
    section = README.split(heading, 1)[1]
    rows = {}
    for line in section.splitlines()[1:]:
        if line.startswith("#"):
            break
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0] and not set(cells[0]) <= {"-", ":"} and cells[0] not in ("Topic", "Service"):
            rows[cells[0]] = cells[1]
    return rows


def _type(readme_type: str) -> str:
    """`sensor_msgs/Image` → sensor_msgs/msg/Image (the README writes the short form)."""
    pkg, name = readme_type.split(" ")[0].split("/")
    return f"{pkg}/{'srv' if name == 'Trigger' else 'msg'}/{name}"


def test_the_topic_tables_are_the_node_topics():
    subscribed = {k: _type(v) for k, v in table_after("### Subscribed topics").items()}
    published = {k: _type(v) for k, v in table_after("### Published topics").items()}
    assert subscribed == SUBSCRIBED
    assert published == PUBLISHED
    assert {k: _type(v) for k, v in table_after("### Services").items()} == SERVICES


def test_every_command_is_in_the_command_table():
    documented = set(re.findall(r"^\| `dejavu-ros ([a-z-]+)", README, flags=re.M))
    assert documented == set(_available())
