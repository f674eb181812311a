"""The journal's event schema has one home, :mod:`kernelflow.store.events`.

Checked here: every kind has a TypedDict and a constructor whose keyword-only
arguments are its fields, in the order they are written, with ``ev`` first;
the fold's field tables type every field; and no module outside the schema,
the hand encoders and the fold's SQL builds an event by hand (a ``"ev"``
literal elsewhere may only read a line's kind). Parsing runs in the calling
(main) thread: CPython 3.11.7 can crash when two threads parse at once.
"""

from __future__ import annotations

import ast
import inspect
import json
import typing
from pathlib import Path

import pytest

import kernelflow
from kernelflow.store import events, fold_sql
from kernelflow.store.journal import encode_event

PACKAGE = Path(kernelflow.__file__).parent

#: Kind -> (constructor, TypedDict).
SCHEMA = {
    "process": (events.process_started, events.ProcessEvent),
    "flow_run": (events.flow_run_created, events.FlowRunEvent),
    "task_run": (events.task_run_created, events.TaskRunEvent),
    "state": (events.state_entered, events.StateEvent),
    "log": (events.log_record, events.LogEvent),
    "inputs": (events.inputs_known, events.InputsEvent),
    "outputs": (events.outputs_recorded, events.OutputsEvent),
    "cache_write": (events.cache_written, events.CacheWriteEvent),
    "cache_hit": (events.cache_hit, events.CacheHitEvent),
    "cache_delete": (events.cache_deleted, events.CacheDeleteEvent),
    "artifact": (events.artifact_created, events.ArtifactEvent),
    "artifact_update": (events.artifact_updated, events.ArtifactUpdateEvent),
    "event": (events.event_emitted, events.EmittedEvent),
}

#: A value of the right JSON type for each field that is not a string.
_SAMPLES = {
    "pid": 12,
    "start_ticks": 34,
    "argv": ["python", "-c"],
    "t": 1.5,
    "part": 2,
    "parameters": {"x": "1"},
    "tags": ["a", "b"],
    "inputs": {"x": {"hash": "h", "upstream": None}},
    "pending": True,
    "run_count": 1,
    "start_time": 0.5,
    "end_time": 2.5,
    "level": 20,
    "outputs": {"y": "h"},
    "size": 7,
    "created": 1.0,
    "expires": 9.0,
    "duration": 0.25,
    "occurred": 1.25,
    "resource": {"prefect.resource.id": "r"},
    "related": [{"prefect.resource.id": "s", "prefect.resource.role": "t"}],
    "payload": {"k": 1},
}


def _full(kind: str) -> dict:
    """Every field of ``kind`` with a non-null value (strings named after their field)."""
    return {name: _SAMPLES.get(name, f"{name}-value") for name in events.FIELDS[kind]}


def test_kinds_are_the_documented_ones() -> None:
    assert events.KINDS == set(SCHEMA)
    assert set(events.FIELDS) == set(SCHEMA)
    for kind in events.KINDS:
        assert f"``{kind}``" in events.__doc__, f"{kind} is not described in the docstring"


@pytest.mark.parametrize("kind", sorted(SCHEMA))
def test_constructor_takes_the_fields_as_keywords_only(kind: str) -> None:
    # FIELDS is read off the constructors: this checks each kind has the right one.
    constructor, _ = SCHEMA[kind]
    parameters = list(inspect.signature(constructor).parameters.values())
    assert [p.name for p in parameters] == list(events.FIELDS[kind])
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters)
    assert constructor.__doc__


@pytest.mark.parametrize("kind", sorted(SCHEMA))
def test_typed_dict_has_the_fields(kind: str) -> None:
    _, typed = SCHEMA[kind]
    assert typed.__required_keys__ | typed.__optional_keys__ == {"ev", *events.FIELDS[kind]}
    assert typed.__optional_keys__ == events.OPTIONAL_FIELDS.get(kind, frozenset())
    assert typing.get_type_hints(typed)["ev"] == typing.Literal[kind]


@pytest.mark.parametrize("kind", sorted(SCHEMA))
def test_event_is_written_ev_first_then_fields_in_order(kind: str) -> None:
    constructor, _ = SCHEMA[kind]
    event = constructor(**_full(kind))
    assert list(event) == ["ev", *events.FIELDS[kind]]
    assert event["ev"] == kind
    line = encode_event(event)
    assert line.startswith(b'{"ev":"' + kind.encode() + b'",')
    assert json.loads(line) == event


@pytest.mark.parametrize("kind", sorted(events.OPTIONAL_FIELDS))
def test_optional_fields_are_left_out_when_null(kind: str) -> None:
    constructor, _ = SCHEMA[kind]
    fields = _full(kind)
    optional = events.OPTIONAL_FIELDS[kind]
    for name in optional:
        fields[name] = None if kind == "state" else 0 if name == "part" else False
    event = constructor(**fields)
    assert list(event) == ["ev", *(f for f in events.FIELDS[kind] if f not in optional)]


def test_state_keeps_its_order_with_some_optional_fields() -> None:
    fields = _full("state") | {"message": None, "end_time": None}
    event = events.state_entered(**fields)
    assert list(event) == [
        "ev",
        "run_id",
        "kind",
        "type",
        "name",
        "t",
        "run_count",
        "start_time",
        "result",
    ]


def test_fold_types_every_field_of_every_kind() -> None:
    table = json.loads(fold_sql.EVENT_TYPE)
    assert table["ev"] == "VARCHAR"
    missing = {
        f"{kind}.{name}"
        for kind, names in events.FIELDS.items()
        for name in names
        if not table.get(name)
    }
    assert not missing, f"fields the fold does not type: {sorted(missing)}"


def test_fold_narrow_tables_read_the_whole_kind() -> None:
    # The narrow parses of the two commonest kinds must not drop a field.
    assert list(json.loads(fold_sql.STATE_TYPE)) == list(events.FIELDS["state"])
    assert list(json.loads(fold_sql.TASK_TYPE)) == list(events.FIELDS["task_run"])


# --- the guard: events are built by the constructors only --------------------


def _allowed(path: Path) -> bool:
    """The schema itself, the engine's hand encoders and the fold's SQL."""
    relative = path.relative_to(PACKAGE).as_posix()
    return relative in {"store/events.py", "store/event_lines.py"} or (
        relative.startswith("store/fold") and relative.endswith(".py")
    )


def _is_read(node: ast.Constant, parent: ast.AST) -> bool:
    """Whether the ``"ev"`` constant ``node`` only reads a line's kind."""
    if isinstance(parent, ast.Call):  # line.get("ev"), as the first argument
        func = parent.func
        return (
            isinstance(func, ast.Attribute)
            and func.attr == "get"
            and bool(parent.args)
            and parent.args[0] is node
        )
    if isinstance(parent, ast.Subscript):  # line["ev"], not line["ev"] = ...
        return parent.slice is node and isinstance(parent.ctx, ast.Load)
    return isinstance(parent, ast.Compare)  # "ev" in line


def hand_built_events(path: Path, source: str) -> list[str]:
    """``file:line`` of each place in ``source`` that builds an event without a constructor."""
    tree = ast.parse(source, str(path))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = []
    for node in ast.walk(tree):
        where = f"{path}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value == "ev" and not _is_read(node, parents[node]):
                found.append(f'{where} "ev" used other than to read a kind')
            elif '"ev"' in node.value:
                found.append(f"{where} an encoded event line")
        elif isinstance(node, ast.keyword) and node.arg == "ev":
            found.append(f"{where} ev= keyword")
    return found


def test_guard_finds_hand_built_events() -> None:
    source = (
        'a = {"ev": "log", "run_id": None}\n'
        'b["ev"] = "state"\n'
        'c = dict(ev="outputs")\n'
        'd = f\'{{"ev":"state","t":{t}}}\'\n'
        'ok = e.get("ev") == "log" or e["ev"] == "state" or "ev" in e\n'
    )
    found = hand_built_events(Path("x.py"), source)
    assert [line.split()[0] for line in found] == ["x.py:1", "x.py:2", "x.py:3", "x.py:4"]


def test_no_event_is_built_outside_the_schema() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if not _allowed(path):
            found.extend(hand_built_events(path, path.read_text(encoding="utf-8")))
    assert not found, "build these with kernelflow.store.events:\n" + "\n".join(found)
