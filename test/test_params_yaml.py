"""The committed params files and the docs table agree with the config schema."""
from __future__ import annotations

import yaml

from conftest import REPO
from dejavu_ros import config_doc, schema
from dejavu_ros.config import DejavuConfig, load_yaml, specs


def flat_params(rel_path: str) -> dict:
    data = yaml.safe_load((REPO / rel_path).read_text())
    assert list(data) == ["/**"], f"{rel_path}: parameters must apply to every node ('/**')"
    return schema.flatten_nested(data["/**"]["ros__parameters"])


def test_files_hold_exactly_the_schema_with_its_defaults():
    table = specs()
    for rel_path, overrides in config_doc.PARAMS_FILES.items():
        values = flat_params(rel_path)
        assert sorted(set(table) - set(values)) == [], f"{rel_path}: missing parameters"
        assert sorted(set(values) - set(table)) == [], f"{rel_path}: unknown parameters"
        for name, spec in table.items():
            expected = overrides.get(name, spec.default)
            assert values[name] == expected, \
                f"{rel_path}: {name} is {values[name]!r}, schema says {expected!r}"
            # ROS refuses an int for a double parameter: the YAML must carry the exact type
            assert type(values[name]) is spec.type, f"{rel_path}: {name} is written as {type(values[name])}"


def test_build_map_file_switches_to_mapping_mode():
    assert load_yaml(REPO / "config/build_map.yaml").node.map_mode == "map"
    assert load_yaml(REPO / "config/relocalize.yaml") == DejavuConfig()


def test_committed_files_are_the_generated_ones():
    """Comments (descriptions, ranges) are current too.

    Regenerate with ``python -m dejavu_ros.config_doc --write .``
    """
    for rel_path, text in config_doc.expected_files().items():
        assert (REPO / rel_path).read_text() == text, f"{rel_path} is stale"


def test_every_parameter_is_documented_with_a_comment():
    lines = (REPO / "config/relocalize.yaml").read_text().splitlines()
    for spec in specs().values():
        section, leaf = spec.name.split(".", 1)
        start = lines.index(f"    {section}:")  # leaf names repeat across sections (features.model, trust.model)
        i = next(i for i, line in enumerate(lines) if i > start and line.strip().startswith(f"{leaf}:")
                 and line.startswith(" " * 6))
        comment = lines[i - 1].strip()
        assert comment.startswith("# " + spec.description), spec.name
        if spec.choices:
            assert all(str(c) in comment for c in spec.choices), spec.name
        if spec.dynamic:
            assert "dynamic" in comment, spec.name


def test_render_yaml_applies_and_checks_overrides():
    text = config_doc.render_yaml({"matching.ratio": 0.8})
    values = schema.flatten_nested(yaml.safe_load(text)["/**"]["ros__parameters"])
    assert values["matching.ratio"] == 0.8 and "(default 0.9)" in text
    try:
        config_doc.render_yaml({"matching.ratio": 2.0})
    except schema.ConfigError as exc:
        assert "matching.ratio" in str(exc)
    else:
        raise AssertionError("an out-of-range override must be refused")


def test_yaml_scalars_keep_their_type():
    for value in (0.0, 1e-05, 2.5e10, 1e300, 3, True, False, "", "on", "1.5", "map", "cuda:0"):
        assert yaml.safe_load(config_doc.yaml_scalar(value)) == value
        assert type(yaml.safe_load(config_doc.yaml_scalar(value))) is type(value)


def test_docs_table_is_current():
    docs = (REPO / config_doc.DOCS_FILE).read_text()
    assert config_doc.replace_table(docs) == docs, "README.md parameter table is stale (python -m dejavu_ros.config_doc --write .)"
    table = config_doc.render_markdown_table()
    for name in specs():
        assert f"| `{name}` |" in table
