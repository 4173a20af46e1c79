"""The parameter files in config/ and the parameter table in docs/, generated from the config schema.

The schema (:mod:`dejavu_ros.config`) is the one list of parameters; this module writes it out
as a commented ROS 2 params file and as a Markdown table so that neither is kept by hand. CI
checks the committed files against :func:`render_yaml` / :func:`render_markdown_table`.

Regenerate after changing a ``param(...)`` declaration::

    python -m dejavu_ros.config_doc --write .
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

import yaml

from . import schema
from .config import DejavuConfig

#: committed params files -> the values in them that differ from the schema defaults
PARAMS_FILES: dict[str, dict[str, Any]] = {
    "config/relocalize.yaml": {},
    "config/build_map.yaml": {"node.map_mode": "map"},
}
TITLES = {
    "config/relocalize.yaml": "relocalizer node: localize camera images against a keyframe map",
    "config/build_map.yaml": "relocalizer node in mapping mode: append keyframes from images + odometry",
}
DOCS_FILE = "README.md"
TABLE_BEGIN = "<!-- BEGIN PARAMETER TABLE (generated: python -m dejavu_ros.config_doc --write .) -->"
TABLE_END = "<!-- END PARAMETER TABLE -->"


def yaml_scalar(value: Any) -> str:
    """One value as YAML that ROS reads back with the same type (floats always carry a '.' or exponent)."""
    if isinstance(value, float):
        text = repr(value)
        if "e" in text and "." not in text.split("e")[0]:  # 1e-05 would load as a string in YAML 1.1
            mantissa, exponent = text.split("e")
            text = f"{mantissa}.0e{exponent}"
        elif "." not in text and "e" not in text and text not in ("inf", "-inf", "nan"):
            text += ".0"
        return text
    dumped = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return dumped[:-4].strip() if dumped.endswith("\n...") else dumped.removesuffix("...").strip()


def constraint_text(spec: schema.ParamSpec) -> str:
    """"0.0 .. 1.0", "one of: a, b" or ""."""
    if spec.choices is not None:
        return "one of: " + ", ".join(str(c) for c in spec.choices)
    if spec.low is not None or spec.high is not None:
        low = "-inf" if spec.low is None else _number(spec.low, spec.type)
        high = "inf" if spec.high is None else _number(spec.high, spec.type)
        return f"{low} .. {high}"
    return ""


def _number(value: float, kind: type) -> str:
    return str(int(value)) if kind is int else yaml_scalar(float(value))


def _section_docs() -> list[tuple[str, str]]:
    """(section name, one-line description) in schema order."""
    out = []
    hints = schema._resolved_types(DejavuConfig)
    for f in dataclasses.fields(DejavuConfig):
        cls = hints[f.name]
        doc = (cls.__doc__ or "").strip()
        if not doc or doc.startswith(cls.__name__ + "("):  # dataclass's generated signature
            doc = (sys.modules[cls.__module__].__doc__ or "").strip()
        out.append((f.name, doc.splitlines()[0] if doc else ""))
    return out


def render_yaml(overrides: dict[str, Any] | None = None, title: str = "") -> str:
    """A complete params file (``/**: ros__parameters:``) with every parameter and its documentation."""
    overrides = dict(overrides or {})
    cfg = schema.apply_flat(DejavuConfig(), overrides)
    values = schema.to_flat(cfg)
    specs = list(schema.iter_specs(DejavuConfig))
    lines = [f"# dejavu_ros parameters{': ' + title if title else ''}.",
             "# Generated from the config schema (dejavu_ros/config.py); regenerate with",
             "#   python -m dejavu_ros.config_doc --write .",
             "# Each entry: description [type; range or choices; 'dynamic' = settable while running with",
             "# `ros2 param set`, all others are read-only once the node has started].",
             "/**:", "  ros__parameters:"]
    for section, doc in _section_docs():
        lines.append("")
        if doc:
            lines.append(f"    # {doc}")
        lines.append(f"    {section}:")
        for spec in (s for s in specs if s.name.split(".")[0] == section):
            tags = [spec.type.__name__, constraint_text(spec), "dynamic" if spec.dynamic else ""]
            note = f" (default {yaml_scalar(spec.default)})" if spec.name in overrides else ""
            lines.append(f"      # {spec.description} [{'; '.join(t for t in tags if t)}]{note}")
            lines.append(f"      {spec.name.split('.', 1)[1]}: {yaml_scalar(values[spec.name])}")
    return "\n".join(lines) + "\n"


def render_markdown_table() -> str:
    """Markdown table of every parameter: name, type, default, range/choices, dynamic, description."""
    rows = ["| Parameter | Type | Default | Range / choices | Dynamic | Description |",
            "|---|---|---|---|---|---|"]
    for spec in schema.iter_specs(DejavuConfig):
        default = yaml_scalar(spec.default)
        cells = [f"`{spec.name}`", spec.type.__name__, f"`{default}`",
                 constraint_text(spec), "yes" if spec.dynamic else "", spec.description.replace("|", "\\|")]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def replace_table(document: str) -> str:
    """``document`` with the text between the table markers replaced by the current table."""
    start, end = document.find(TABLE_BEGIN), document.find(TABLE_END)
    if start < 0 or end < start:
        raise schema.ConfigError(f"{DOCS_FILE}: parameter table markers not found")
    head = document[:start + len(TABLE_BEGIN)]
    return head + "\n\n" + render_markdown_table() + "\n" + document[end:]


def expected_files() -> dict[str, str]:
    return {path: render_yaml(overrides, TITLES.get(path, "")) for path, overrides in PARAMS_FILES.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dejavu_ros.config_doc",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--write", metavar="REPO_ROOT", help="rewrite config/*.yaml and the table in "
                        f"{DOCS_FILE} under this checkout (default: print the YAML)")
    parser.add_argument("--markdown", action="store_true",
                        help="print the Markdown table instead of the YAML")
    args = parser.parse_args(argv)
    if args.write is None:
        sys.stdout.write(render_markdown_table() if args.markdown else render_yaml())
        return 0
    root = Path(args.write)
    for rel, text in expected_files().items():
        (root / rel).write_text(text)
        print(f"wrote {rel}")
    docs = root / DOCS_FILE
    if docs.is_file():
        docs.write_text(replace_table(docs.read_text()))
        print(f"updated the parameter table in {DOCS_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
