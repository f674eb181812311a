"""The fields of one run's detail that need a second look: typed parameters, the pause form.

The store keeps each parameter value as its text; :func:`_typed_parameters`
adds a type (from a deployment notebook's ``parameters`` cell, else from the
text). :func:`_pause_of` describes the form a run paused for input waits for.
"""

from __future__ import annotations

import json
from typing import Any

from kernelflow.errors import ConfigurationError

__all__: list[str] = []


# Python's names for the types a parameter's recorded text can be read back as.
_LITERAL_TYPES = {int, float, complex, str, bytes, bool, list, dict, tuple, set, type(None)}


def _type_of_text(text: str) -> str:
    """The type of a recorded value, from its text (a repr); ``any`` when it is no literal."""
    import ast

    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return "any"
    if value is None:
        return "None"
    kind = type(value)
    return kind.__name__ if kind in _LITERAL_TYPES else "any"


def _notebook_types(deployment_id: str) -> dict[str, str]:
    """The types the deployment's notebook declares for its parameters (empty if unknown)."""
    from kernelflow import settings
    from kernelflow.deployments.models import Deployment
    from kernelflow.deployments.parameters import notebook_parameters, read_notebook
    from kernelflow.store.queries import deployment_definition

    definition = deployment_definition(deployment_id)
    if definition is None:
        return {}
    try:
        deployment = Deployment.from_definition(json.loads(definition))
        declared = notebook_parameters(
            read_notebook(deployment.snapshot_path(settings.paths().home))
        )
    except (ConfigurationError, ValueError, TypeError, KeyError):
        # A snapshot gone or unreadable: fall back to the types of the values.
        return {}
    return {name: param.type for name, param in (declared or {}).items()}


def _typed_parameters(run: dict[str, Any]) -> list[dict[str, str]]:
    """The run's parameters as ``{"name", "type", "value_text"}``.

    The store keeps each value as its text (``repr``), so a run of any flow
    can be recorded; a deployment run's types come from its notebook's
    ``parameters`` cell, the others' from the recorded text.
    """
    recorded = run.get("parameters") or {}
    if not isinstance(recorded, dict):
        return []
    declared = _notebook_types(run["deployment_id"]) if run.get("deployment_id") else {}
    typed = []
    for name, value in recorded.items():
        text = value if isinstance(value, str) else json.dumps(value)
        kind = declared.get(name)
        if kind is None or kind == "any":
            kind = _type_of_text(text)
        typed.append({"name": str(name), "type": kind, "value_text": text})
    return typed


# JSON schema types, as a Python user names them.
_SCHEMA_TYPES = {
    "integer": "int",
    "number": "float",
    "string": "str",
    "boolean": "bool",
    "array": "list",
    "object": "dict",
    "null": "None",
}


def _schema_type(spec: dict[str, Any]) -> str:
    if "type" in spec:
        kinds = spec["type"] if isinstance(spec["type"], list) else [spec["type"]]
        return " | ".join(_SCHEMA_TYPES.get(str(k), str(k)) for k in kinds)
    options = spec.get("anyOf") or spec.get("oneOf")
    if options:
        return " | ".join(_schema_type(option) for option in options)
    if "enum" in spec:
        return " | ".join(repr(v) for v in spec["enum"])
    if "$ref" in spec:
        return str(spec["$ref"]).rsplit("/", 1)[-1]
    return "any"


def _pause_of(run: dict[str, Any]) -> dict[str, Any] | None:
    """The form a run paused for input waits for, or None (not paused, or nobody waits)."""
    if run.get("state_type") != "PAUSED":
        return None
    from kernelflow._resume import find_pause
    from kernelflow.errors import KernelflowError

    try:
        record = find_pause(run["id"])
    except KernelflowError:
        return None  # a pause file another version wrote: the CLI explains it
    if record is None:
        return None
    schema = record.schema or {}
    properties = schema.get("properties") or {}
    fields = []
    for name in record.fields:
        spec = properties.get(name) or {}
        fields.append(
            {
                "name": name,
                "type": _schema_type(spec),
                "default": spec.get("default"),
                "description": spec.get("description") or spec.get("title"),
            }
        )
    return {
        "key": record.key,
        "description": schema.get("description") or run.get("state_message") or "",
        "fields": fields,
    }
