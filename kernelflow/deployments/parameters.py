"""Typed notebook parameters, read from the cell tagged ``parameters``.

Each top-level assignment in that cell declares a parameter. Its type comes
from the annotation (``n: int = 10``) or else from the default value
(``ratio = 0.5`` is a float). Values given as text (``-p n=5``) are converted
to that type before anything is scheduled, and refused with a message that
names the parameter and its type when they do not fit: papermill itself only
warns.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kernelflow.errors import ConfigurationError

__all__ = [
    "NotebookParameter",
    "coerce_parameters",
    "notebook_parameters",
    "read_notebook",
    "read_snapshot",
]

_SUPPORTED = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "dict": dict}
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


@dataclass(frozen=True)
class NotebookParameter:
    """One parameter of a notebook: its name, type name and default value."""

    name: str
    type: str
    default: Any
    has_default: bool = True


def read_notebook(path: str | Path) -> Any:
    """Read a notebook with nbformat, with one-line errors for a missing or invalid file."""
    import nbformat

    path = Path(path)
    try:
        found = path.is_file()
    except OSError as exc:  # e.g. a name too long for the file system
        raise ConfigurationError(
            f"Notebook {str(path)[:200]!r} cannot be read ({exc.strerror}); check the path."
        ) from None
    if not found:
        raise ConfigurationError(f"Notebook {str(path)!r} does not exist; check the path.")
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigurationError(
            f"{str(path)!r} is not a valid notebook ({first}); open and re-save it in Jupyter."
        ) from None
    return nb


def read_snapshot(path: str | Path) -> Any:
    """Read a deployment's notebook snapshot for its parameters, without nbformat.

    The snapshot is a byte copy of a notebook that :func:`read_notebook`
    validated when it was deployed, so plain JSON is enough to find its
    ``parameters`` cell. Importing nbformat would cost a command that only
    checks parameters (``kernelflow deployment run``) over a second of CPU
    (jsonschema's format checkers). Anything but a version 4 notebook goes
    through :func:`read_notebook`, with its conversion and its errors.
    """
    try:
        nb = json.loads(Path(path).read_bytes())
    except (OSError, ValueError):
        return read_notebook(path)
    if not isinstance(nb, dict) or nb.get("nbformat") != 4 or not isinstance(nb.get("cells"), list):
        return read_notebook(path)
    cells = nb["cells"]
    if not all(isinstance(c, dict) and isinstance(c.get("metadata", {}), dict) for c in cells):
        return read_notebook(path)
    return nb


def _source(cell: Any) -> str:
    # On disk a cell's source may be a list of lines; nbformat joins them when it reads.
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _parameters_cell(nb: Any) -> Any | None:
    # Item access: the cells may be nbformat's nodes or a snapshot's plain dicts.
    for cell in nb["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        if cell.get("cell_type") == "code" and isinstance(tags, list) and "parameters" in tags:
            return cell
    return None


def _type_name(annotation: ast.expr | None, value: Any, has_value: bool) -> str:
    if annotation is not None:
        text = ast.unparse(annotation)
        base = text.split("[", 1)[0]
        return base if base in _SUPPORTED else text
    if has_value and value is not None:
        name = type(value).__name__
        return name if name in _SUPPORTED else "any"
    return "any"


def notebook_parameters(nb: Any) -> dict[str, NotebookParameter] | None:
    """The parameters declared by the notebook, or None when it has no ``parameters`` cell."""
    cell = _parameters_cell(nb)
    if cell is None:
        return None
    try:
        tree = ast.parse(_source(cell))
    except SyntaxError as exc:
        raise ConfigurationError(
            f"The notebook's parameters cell does not parse (line {exc.lineno}: {exc.msg}); fix it."
        ) from None
    found: dict[str, NotebookParameter] = {}
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            targets, annotation, value_node = [node.target], node.annotation, node.value
        elif isinstance(node, ast.Assign):
            targets = [t for t in node.targets if isinstance(t, ast.Name)]
            annotation, value_node = None, node.value
        else:
            continue
        has_value, value, literal = False, None, False
        if value_node is not None:
            try:
                value, has_value, literal = ast.literal_eval(value_node), True, True
            except (ValueError, SyntaxError, TypeError):
                # An expression (``object()``): its text is shown as the default, and
                # its type is unknown unless annotated.
                value, has_value = ast.unparse(value_node), True
        for target in targets:
            found[target.id] = NotebookParameter(
                target.id, _type_name(annotation, value, literal), value, has_value
            )
    return found


def _convert(param: NotebookParameter, raw: Any, where: str) -> Any:
    kind = param.type
    if not isinstance(raw, str):
        if kind == "float" and isinstance(raw, int) and not isinstance(raw, bool):
            return float(raw)
        expected = _SUPPORTED.get(kind)
        if expected is None or (
            isinstance(raw, expected) and not (expected is int and isinstance(raw, bool))
        ):
            return raw
        raise ConfigurationError(
            f"Parameter {param.name!r} of {where} is {_article(kind)}; got {raw!r}."
        )
    try:
        if kind == "str" or kind == "any":
            return raw
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool":
            lowered = raw.strip().lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise ValueError(raw)
        if kind in ("list", "dict"):
            value = json.loads(raw)
            if not isinstance(value, _SUPPORTED[kind]):
                raise ValueError(raw)
            return value
        return raw  # an annotation we do not convert (e.g. a custom type): passed as text
    except ValueError:
        raise ConfigurationError(
            f"Parameter {param.name!r} of {where} is {_article(kind)}; {raw!r} is not."
        ) from None


def _article(kind: str) -> str:
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"


def coerce_parameters(nb: Any, given: dict[str, Any], where: str) -> dict[str, Any]:
    """Check ``given`` against the notebook's parameters and convert each to its type.

    Raises
    ------
    ConfigurationError
        For parameters given to a notebook without a ``parameters`` cell, an
        unknown name, or a value that does not fit the parameter's type.
    """
    declared = notebook_parameters(nb)
    if declared is None:
        if given:
            raise ConfigurationError(
                f"{where} has no cell tagged 'parameters', so it cannot take "
                f"{sorted(given)}; add the tag 'parameters' to the cell that sets the defaults "
                "(in JupyterLab: the cell's property inspector, Common Tools → Cell Tags)."
            )
        return {}
    converted = {}
    for name, raw in given.items():
        param = declared.get(name)
        if param is None:
            known = ", ".join(f"{p.name} ({p.type})" for p in declared.values()) or "none"
            raise ConfigurationError(
                f"{where} has no parameter {name!r}; its parameters are: {known}."
            )
        converted[name] = _convert(param, raw, where)
    return converted
