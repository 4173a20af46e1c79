"""Machinery behind the one config schema.

Every tunable of the package is a dataclass field declared with :func:`param`. From those
declarations this module derives, without a second hand-kept list:

* a flat ``{"section.name": value}`` view (the ROS parameter names),
* the YAML file layout (``/**: ros__parameters: section: {name: value}``),
* ``argparse`` flags (``--section.name VALUE``),
* validation (type, range, choices) with messages that name the parameter.
"""
from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import MISSING, Field, fields, is_dataclass
from typing import Any, Iterator, Sequence

from .errors import DejavuError


class ConfigError(DejavuError, ValueError):
    """A configuration value is invalid; the message names the parameter."""


def param(default: Any, description: str, *, low: float | None = None, high: float | None = None,
          choices: Sequence[Any] | None = None, dynamic: bool = False) -> Any:
    """Declare a config field with its documentation and its valid range.

    ``dynamic`` marks values that are safe to change while the node runs (thresholds, not the
    model or the map).
    """
    meta = {"description": description, "low": low, "high": high,
            "choices": tuple(choices) if choices is not None else None, "dynamic": dynamic}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def param_like(cls: type, name: str, default: Any = MISSING, description: str | None = None) -> Any:
    """A field declared like ``cls.name`` (same range, choices and words), e.g. training's copy of a
    similarity setting: one definition, so a value is checked the same way everywhere."""
    f = {f.name: f for f in fields(cls)}[name]
    meta = dict(f.metadata)
    return param(_field_default(f) if default is MISSING else default, description or meta["description"],
                 low=meta["low"], high=meta["high"], choices=meta["choices"], dynamic=meta["dynamic"])


@dataclasses.dataclass(frozen=True)
class ParamSpec:
    """Everything known about one leaf parameter."""

    name: str  # dotted, e.g. "matching.ratio"
    type: type
    default: Any
    description: str
    low: float | None
    high: float | None
    choices: tuple | None
    dynamic: bool
    item: type | None = None  # element type of a list (its low/high apply to every element)


def _field_default(f: Field) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    raise TypeError(f"config field {f.name} has no default")


def _resolved_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def iter_specs(cls_or_obj: Any, prefix: str = "") -> Iterator[ParamSpec]:
    """Yield a :class:`ParamSpec` for every leaf field, depth first, in declaration order."""
    cls = cls_or_obj if isinstance(cls_or_obj, type) else type(cls_or_obj)
    hints = _resolved_types(cls)
    for f in fields(cls):
        name = f"{prefix}{f.name}"
        ftype = hints[f.name]
        if is_dataclass(ftype):
            yield from iter_specs(ftype, prefix=name + ".")
            continue
        meta = f.metadata
        if "description" not in meta:
            raise TypeError(f"config field {name} must be declared with param()")
        default = _field_default(f)
        yield ParamSpec(name=name, type=_leaf_type(ftype), default=default,
                        description=meta["description"], low=meta["low"], high=meta["high"],
                        choices=meta["choices"], dynamic=meta["dynamic"], item=_item_type(ftype))


def _leaf_type(t: Any) -> type:
    origin = typing.get_origin(t)
    if origin in (list, tuple):
        return list
    if t in (bool, int, float, str):
        return t
    raise TypeError(f"unsupported config type {t!r}")


def _item_type(t: Any) -> type | None:
    args = typing.get_args(t)
    return args[0] if typing.get_origin(t) in (list, tuple) and args and args[0] in (int, float, str) else None


def spec_map(cls: type) -> dict[str, ParamSpec]:
    return {s.name: s for s in iter_specs(cls)}


def to_flat(obj: Any, prefix: str = "") -> dict[str, Any]:
    """``{"section.name": value}`` for every leaf of a config instance."""
    out: dict[str, Any] = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if is_dataclass(value):
            out.update(to_flat(value, prefix=f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = list(value) if isinstance(value, (list, tuple)) else value
    return out


def to_nested(obj: Any) -> dict[str, Any]:
    """Nested plain dict (the YAML body under ``ros__parameters``)."""
    return dataclasses.asdict(obj)


def coerce(spec: ParamSpec, value: Any, label: str | None = None) -> Any:
    """Convert and check one value; raise :class:`ConfigError` naming the parameter (or ``label``,
    e.g. the command-line flag the value came from)."""
    label = label or f"parameter '{spec.name}'"
    t = spec.type
    try:
        if t is bool:
            if isinstance(value, str):
                low = value.strip().lower()
                if low in ("true", "1", "yes", "on"):
                    value = True
                elif low in ("false", "0", "no", "off"):
                    value = False
                else:
                    raise ValueError(value)
            elif not isinstance(value, (bool, int)) or value not in (0, 1):
                raise ValueError(value)
            value = bool(value)
        elif t is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            value = int(value)
        elif t is float:
            if isinstance(value, bool):
                raise ValueError(value)
            value = float(value)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError(value)
        elif t is str:
            if not isinstance(value, str):
                raise ValueError(value)
        elif t is list:
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            value = list(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{label}: expected {t.__name__}, got {value!r}") from None
    if t is list and spec.item is not None:  # every element checked as a scalar of its type
        item = ParamSpec(spec.name, spec.item, None, "", spec.low, spec.high, None, False)
        return [coerce(item, v, f"{label} (element {i + 1})") for i, v in enumerate(value)]
    if spec.choices is not None and value not in spec.choices:
        raise ConfigError(f"{label}: {value!r} is not one of {list(spec.choices)}")
    if spec.low is not None and value < spec.low:
        raise ConfigError(f"{label}: {value!r} is below the minimum {spec.low}")
    if spec.high is not None and value > spec.high:
        raise ConfigError(f"{label}: {value!r} is above the maximum {spec.high}")
    return value


def apply_flat(obj: Any, values: dict[str, Any], labels: dict[str, str] | None = None) -> Any:
    """Return a copy of ``obj`` with dotted-name overrides applied and validated.

    Unknown names are an error (a typo in a YAML file must not pass silently). ``labels`` names
    where a value came from in error messages (e.g. ``{"matching.ratio": "--matching.ratio"}``).
    """
    specs = spec_map(type(obj))
    unknown = sorted(set(values) - set(specs))
    if unknown:
        raise ConfigError(f"unknown parameter(s): {', '.join(unknown)}")
    labels = labels or {}
    checked = {k: coerce(specs[k], v, labels.get(k)) for k, v in values.items()}
    return _replace_flat(obj, checked)


def _replace_flat(obj: Any, values: dict[str, Any], prefix: str = "") -> Any:
    changes = {}
    for f in fields(obj):
        name = f"{prefix}{f.name}"
        value = getattr(obj, f.name)
        if is_dataclass(value):
            sub = {k: v for k, v in values.items() if k.startswith(name + ".")}
            if sub:
                changes[f.name] = _replace_flat(value, sub, prefix=name + ".")
        elif name in values:
            changes[f.name] = values[name]
    return dataclasses.replace(obj, **changes) if changes else obj


def flatten_nested(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten a nested dict from YAML into dotted names."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten_nested(v, prefix=name + "."))
        else:
            out[name] = v
    return out


def validate(obj: Any) -> Any:
    """Check every field of an instance; return it unchanged or raise :class:`ConfigError`."""
    for spec in iter_specs(type(obj)):
        value = obj
        for part in spec.name.split("."):
            value = getattr(value, part)
        coerce(spec, value)
    return obj


# --- argparse -----------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser, cls: type, sections: Sequence[str] | None = None) -> None:
    """Add ``--section.name`` flags for the schema (optionally only some sections).

    Flags default to ``None`` so that only what the user typed overrides YAML / defaults.
    """
    group = parser.add_argument_group("configuration (see config/relocalize.yaml)")
    for spec in iter_specs(cls):
        if sections is not None and spec.name.split(".")[0] not in sections:
            continue
        group.add_argument(f"--{spec.name}", dest=f"cfg__{spec.name}", default=None,
                           metavar=spec.type.__name__.upper(), help=help_for(spec))


def help_for(spec: ParamSpec) -> str:
    """A spec's description for argparse (which treats % as a format character)."""
    return (spec.description + f" (default: {spec.default!r})").replace("%", "%%")


def add_flag(parser: Any, flag: str, cls: type, name: str, default: Any = MISSING) -> None:
    """A short flag (``--bandwidth``) for the field ``name`` of ``cls``: its help, range and
    messages come from the schema; read the checked values with :func:`flag_values`."""
    spec = spec_map(cls)[name]
    if default is not MISSING:
        spec = dataclasses.replace(spec, default=default)
    registry = parser.get_default("schema_flags")
    if registry is None:  # travels to the parsed namespace, where flag_values finds it
        registry = {}
        parser.set_defaults(schema_flags=registry)
    dest = "flag__" + name.replace(".", "__")
    registry[dest] = (flag, spec)
    parser.add_argument(flag, dest=dest, default=None, metavar=spec.type.__name__.upper(), help=help_for(spec))


def flag_values(args: argparse.Namespace) -> dict[str, Any]:
    """``{field name: value}`` of the flags :func:`add_flag` registered, defaults filled in and every
    value checked; a bad one raises :class:`ConfigError` naming the flag."""
    out = {}
    for dest, (flag, spec) in (getattr(args, "schema_flags", None) or {}).items():
        value = getattr(args, dest, None)
        out[spec.name] = spec.default if value is None else coerce(spec, value, flag)
    return out


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    return {k[len("cfg__"):]: v for k, v in vars(args).items() if k.startswith("cfg__") and v is not None}


def labels_from_args(args: argparse.Namespace) -> dict[str, str]:
    """Flag names of the ``--section.name`` overrides, for error messages."""
    return {name: f"--{name}" for name in overrides_from_args(args)}
