"""``kernelflow flow-run resume``: resume a paused flow run, with its input, from a terminal.

A flow run paused by ``pause_flow_run`` / ``suspend_flow_run`` waits in its
own process (a script, a notebook kernel, a deployment run). This command
finds the pause in the store home and hands it the input; the paused process
validates it with its model and answers, so the command ends only once the
run is Running again, or says in one line why not (an unknown id, a run that
is not paused, input that does not fit: the run then stays paused).

``--input NAME=VALUE`` may be repeated. A value is read as JSON when it
parses (``42``, ``true``, ``[1, 2]``, ``{"a": 1}``), else as text, and a field
that takes text always gets the text as typed (``--input zip=02134``).
Paused runs are listed by ``kernelflow runs ls --state Paused``.
"""

from __future__ import annotations

import json
from typing import Any

import click

from kernelflow.errors import ConfigurationError

__all__ = ["command"]


@click.group("flow-run")
def command() -> None:
    """Resume paused flow runs."""


@command.command("resume")
@click.argument("flow_run_id")
@click.option(
    "--input",
    "inputs",
    multiple=True,
    metavar="NAME=VALUE",
    help="A field of the input the run waits for (repeat for each); JSON values are parsed.",
)
def resume(flow_run_id: str, inputs: tuple[str, ...]) -> None:
    """Resume the paused flow run FLOW_RUN_ID (or a unique prefix of it)."""
    from kernelflow._resume import explain_not_waiting, find_pause, send_resume

    record = find_pause(flow_run_id)
    if record is None:
        explain_not_waiting(flow_run_id)
    if inputs and record.schema is None:
        click.echo(
            f"Warning: flow run {record.label()} waits for no input; --input is ignored.",
            err=True,
        )
    run_input = parse_inputs(inputs, record.schema) if record.schema is not None else None
    send_resume(record, run_input, "kernelflow flow-run resume")
    click.echo(f"Resumed flow run {record.label()}.")


def parse_inputs(pairs: tuple[str, ...] | list[str], schema: dict | None) -> dict[str, Any]:
    """``NAME=VALUE`` pairs as a dict: JSON values parsed, text fields kept as typed.

    Parameters
    ----------
    pairs
        The ``--input`` values.
    schema
        The JSON schema of the input model, to know which fields take text.

    Raises
    ------
    ConfigurationError
        A pair without ``=``, or a name given twice.
    """
    properties = (schema or {}).get("properties", {})
    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            fields = ", ".join(properties) or "none"
            raise ConfigurationError(
                f"--input {pair!r} is not NAME=VALUE (the run's input fields: {fields})."
            )
        if name in values:
            raise ConfigurationError(f"--input {name}= is given twice; give each field once.")
        values[name] = raw if _takes_text(properties.get(name)) else _json_or_text(raw)
    return values


def _takes_text(prop: Any) -> bool:
    """Whether a schema property accepts only text (``str``, ``str | None``, ``Literal['a']``)."""
    if not isinstance(prop, dict):
        return False
    options = prop.get("anyOf", [prop])
    types = {o.get("type") for o in options if isinstance(o, dict)} - {"null"}
    return types == {"string"}


def _json_or_text(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw
