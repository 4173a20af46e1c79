"""ROS parameters declared from the config schema, and the rules for changing them at run time.

Every field of :class:`dejavu_ros.config.DejavuConfig` becomes one parameter with its dotted name
(``matching.ratio``), description and range; fields not marked ``dynamic`` are read-only once the
node runs. The rules are plain functions (tested without ROS); rcl_interfaces is imported only by
the functions that build ROS objects.
"""
from __future__ import annotations

import sys
from typing import Any, Iterable

from .. import schema
from ..config import DejavuConfig, specs
from ..schema import ConfigError, ParamSpec

_FLOAT_MAX = sys.float_info.max
_INT64 = (-(2 ** 63), 2 ** 63 - 1)
#: parameters every rclpy node has; not ours to check
ROS_OWN_PARAMETERS = ("use_sim_time", "start_type_description_service")


def descriptor_fields(spec: ParamSpec) -> dict[str, Any]:
    """The ParameterDescriptor of one schema field as plain values."""
    fields: dict[str, Any] = {"name": spec.name, "type": spec.type.__name__, "read_only": not spec.dynamic,
                              "description": spec.description, "additional_constraints": "",
                              "integer_range": None, "floating_point_range": None}
    if spec.choices is not None:
        fields["additional_constraints"] = "one of: " + ", ".join(str(c) for c in spec.choices)
    if spec.low is not None or spec.high is not None:
        if spec.type is int:
            fields["integer_range"] = (int(spec.low) if spec.low is not None else _INT64[0],
                                       int(spec.high) if spec.high is not None else _INT64[1])
        elif spec.type is float:
            fields["floating_point_range"] = (float(spec.low) if spec.low is not None else -_FLOAT_MAX,
                                              float(spec.high) if spec.high is not None else _FLOAT_MAX)
    if not spec.dynamic:
        fields["additional_constraints"] = "; ".join(
            filter(None, [fields["additional_constraints"], "read-only while the node runs"]))
    return fields


def check_changes(cfg: DejavuConfig, changes: dict[str, Any]) -> DejavuConfig:
    """The config after a ``ros2 param set``; raise :class:`ConfigError` with the reason to refuse it.

    Names outside the schema (``use_sim_time``, QoS overrides) are left to ROS and ignored here.
    """
    table = specs()
    ours = {name: value for name, value in changes.items() if name in table}
    for name in ours:
        if not table[name].dynamic:
            raise ConfigError(f"parameter '{name}' cannot change while the node runs; set it in the "
                              "params file and restart the node")
    if not ours:
        return cfg
    return schema.apply_flat(cfg, ours)


def unknown_overrides(names: Iterable[str]) -> list[str]:
    """Override names (from a params file or ``-p``) that no parameter of the node has: likely typos."""
    table = specs()
    return sorted(n for n in names if n not in table and n not in ROS_OWN_PARAMETERS
                  and not n.startswith("qos_overrides."))


# --- rclpy side -------------------------------------------------------------------------------

def make_descriptor(spec: ParamSpec) -> Any:
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType

    fields = descriptor_fields(spec)
    ros_type = {"bool": ParameterType.PARAMETER_BOOL, "int": ParameterType.PARAMETER_INTEGER,
                "float": ParameterType.PARAMETER_DOUBLE, "str": ParameterType.PARAMETER_STRING,
                "list": ParameterType.PARAMETER_STRING_ARRAY}[fields["type"]]
    desc = ParameterDescriptor(name=spec.name, type=ros_type, description=fields["description"],
                               additional_constraints=fields["additional_constraints"],
                               read_only=fields["read_only"])
    if fields["integer_range"] is not None:
        low, high = fields["integer_range"]
        desc.integer_range = [IntegerRange(from_value=low, to_value=high, step=0)]
    if fields["floating_point_range"] is not None:
        low, high = fields["floating_point_range"]
        desc.floating_point_range = [FloatingPointRange(from_value=low, to_value=high, step=0.0)]
    return desc


def declare_schema_parameters(node: Any) -> DejavuConfig:
    """Declare every schema field on ``node``; return the validated config the overrides give."""
    from rclpy import exceptions as rclpy_exceptions

    refused = tuple(getattr(rclpy_exceptions, n) for n in (
        "InvalidParameterValueException", "InvalidParameterTypeException", "InvalidParameterException")
        if hasattr(rclpy_exceptions, n))
    values = {}
    for spec in specs().values():
        default = list(spec.default) if spec.type is list else spec.default
        try:
            param = node.declare_parameter(spec.name, default, make_descriptor(spec))
        except refused as exc:
            hint = " (write floating-point values with a decimal point, e.g. 2.0)" if spec.type is float else ""
            raise ConfigError(f"parameter '{spec.name}': {exc}{hint}") from None
        values[spec.name] = param.value
    return schema.validate(schema.apply_flat(DejavuConfig(), values))
