"""Strict check of a JSON response against botocore's own service model (every member name and type)."""

from typing import Any

from botocore.model import Shape


def shape_errors(value: Any, shape: Shape, path: str = "$") -> list[str]:
    """Everything in `value` that the shape does not allow; [] when it conforms."""
    errors: list[str] = []
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{path}: expected an object, got {type(value).__name__}"]
        members = shape.members  # type: ignore[attr-defined]
        for name in value:
            if name not in members:
                errors.append(f"{path}.{name}: not a member of {shape.name}")
        for name in shape.required_members:  # type: ignore[attr-defined]
            if name not in value:
                errors.append(f"{path}.{name}: required by {shape.name}")
        for name, member in members.items():
            if name in value:
                errors += shape_errors(value[name], member, f"{path}.{name}")
    elif kind == "list":
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {type(value).__name__}"]
        for index, item in enumerate(value):
            errors += shape_errors(item, shape.member, f"{path}[{index}]")  # type: ignore[attr-defined]
    elif kind == "string":
        if not isinstance(value, str):
            errors.append(f"{path}: expected a string, got {type(value).__name__}")
        elif shape.enum and value not in shape.enum:
            errors.append(f"{path}: {value!r} is not one of {shape.enum}")
    elif kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            errors.append(f"{path}: expected a number, got {type(value).__name__}")
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(f"{path}: expected an integer, got {type(value).__name__}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            errors.append(f"{path}: expected a boolean, got {type(value).__name__}")
    else:
        errors.append(f"{path}: shape type {kind} not handled by this checker")
    if kind in ("float", "double", "integer", "long") and not errors:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if (low is not None and value < low) or (high is not None and value > high):
            errors.append(f"{path}: {value} outside [{low}, {high}]")
    return errors
