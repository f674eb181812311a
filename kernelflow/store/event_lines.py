"""The journal lines of the engine's hottest events, encoded by hand.

Every transition of every run writes a ``state`` line, and every task run a
``task_run`` line, so the engine does not build these through the generic
JSON encoder (:func:`kernelflow.store.journal.encode_event`): the functions
here write the same bytes, several times faster. ``tests/test_scale.py``
checks, byte for byte, that each fast line equals the generic encoding of the
event that :mod:`kernelflow.store.events` constructs for it. Whenever a value
is not of the plain type the fast path relies on (a float that is not
finite, a name that is not a string...), the event is encoded the generic way.

The runs and states are read by attribute only (``run.id``, ``state.type``...):
this module sits in the store layer, below the model that defines them.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from kernelflow.store.events import state_entered
from kernelflow.store.journal import encode_event

if TYPE_CHECKING:
    from kernelflow.store.event_types import StateEvent

__all__ = [
    "MESSAGE_LIMIT",
    "encode_created",
    "encode_state_event",
    "implies_pending",
    "state_event",
]

#: Characters of a state's message kept in the journal (the rest becomes "…").
MESSAGE_LIMIT = 4000


def state_event(kind: str, run: Any, state: Any, result: str | None) -> StateEvent:
    """The ``state`` event of ``run`` entering ``state`` (a null field is left out)."""
    message = state.message
    if message is not None and len(message) > MESSAGE_LIMIT:
        message = message[:MESSAGE_LIMIT] + "…"
    return state_entered(
        run_id=run.id,
        kind=kind,
        type=state.type.value,
        name=state.name,
        message=message,
        t=state.timestamp,
        run_count=run.run_count,
        start_time=run.start_time,
        end_time=run.end_time,
        result=result,
    )


_quote = json.encoder.encode_basestring  # C, as the journal's
_float = float.__repr__  # TypeError for anything but a float, as encode_state_event needs
_MESSAGE_KEY, _START_KEY, _END_KEY, _RESULT_KEY = (
    '"message":',
    ',"start_time":',
    ',"end_time":',
    ',"result":',
)
_PENDING_FIELD = ',"pending":true'
_NULL_INPUT = '{"hash":null,"upstream":null}'

# Memos of the texts a task run's lines repeat: its id (in its creation line and each
# state line), its start time (its Running line and its final one), its flow run's id
# and its task's name (in every task run of the flow). A float's repr costs as much as
# a third of a line. Each memo holds one object and is looked up by identity, so it
# can never give the text of another value; threads that interleave only miss.
_id_memo: tuple[object, str] = (None, "null")
_flow_memo: tuple[object, str] = (None, "null")
_start_memo: tuple[object, str] = (None, "null")
#: Quoted state and task names, by name (a bounded set: see _quoted_name).
_names: dict[str, str] = {}
_NAMES_MAX = 256


def _quoted_id(value: str) -> str:
    """``value`` (a run id) as a JSON string, the last one remembered."""
    global _id_memo
    memo = _id_memo
    if memo[0] is value:
        return memo[1]
    text = _quote(value)
    _id_memo = (value, text)
    return text


def _quoted_name(name: str) -> str:
    """A state's or task's name as a JSON string; the first few hundred are remembered."""
    text = _names.get(name)
    if text is None:
        text = _quote(name)
        if len(_names) < _NAMES_MAX and type(name) is str:
            _names[name] = text
    return text


def encode_state_event(kind: str, run: Any, state: Any, result: str | None) -> bytes | None:
    """The journal line of a state event, built without the generic JSON encoder.

    A run's every transition writes one, so this is the hottest line of the
    engine: the same bytes as :func:`state_event` through the journal's encoder
    (``tests/test_scale.py`` checks), several times faster. None when a field
    is not of the plain type this relies on (a float that is not finite, a
    name that is not a string...); the caller then encodes the event the
    generic way. Null fields are left out, as :func:`state_event` leaves them.
    """
    global _start_memo
    message, t, start, end = state.message, state.timestamp, run.start_time, run.end_time
    name, run_id, id_memo = state.name, run.id, _id_memo
    try:
        if t - t or (start is not None and start - start) or (end is not None and end - end):
            return None  # NaN or infinity: the generic encoder writes them its own way
        t_text = _float(t)
        if start is None:
            start_field = ""
        else:
            # A run's start time is its first Running state's time (lifecycle.enter_try).
            if start is t:
                _start_memo = (t, t_text)
                start_text = t_text
            else:
                memo = _start_memo
                if memo[0] is not start:
                    memo = _start_memo = (start, _float(start))
                start_text = memo[1]
            start_field = _START_KEY + start_text
        if message is not None and len(message) > MESSAGE_LIMIT:
            message = message[:MESSAGE_LIMIT] + "…"
        text = (
            f'{{"ev":"state","run_id":'
            f'{id_memo[1] if id_memo[0] is run_id else _quoted_id(run_id)},"kind":"{kind}",'
            f'"type":"{state.type._value_}","name":{_names.get(name) or _quoted_name(name)},'
            f"{'' if message is None else _MESSAGE_KEY + _quote(message) + ','}"
            f'"t":{t_text},"run_count":{int.__index__(run.run_count)}{start_field}'
            f"{'' if end is None else _END_KEY + (t_text if end is t else _float(end))}"
            f"{'' if result is None else _RESULT_KEY + _quote(result)}}}\n"
        )
    except TypeError:
        return None
    return text.encode("utf-8", "surrogatepass")


def encode_created(event: dict) -> bytes:
    """The journal line of an event written with a state (``before``): a task run's
    creation fast, as :func:`encode_state_event`; any other event the generic way.

    A creation that implies its Pending state (``"pending": true``, see
    :func:`implies_pending`) carries that field last.
    """
    global _flow_memo
    if event.get("ev") != "task_run":
        return encode_event(event)
    pending = event.get("pending")
    if len(event) != (10 if pending is True else 9):
        return encode_event(event)
    try:
        flow_run_id, cache_key, tags = event["flow_run_id"], event["cache_key"], event["tags"]
        task_name = event["task_name"]
        if type(tags) is not list:
            return encode_event(event)
        inputs = []
        for name, record in event["inputs"].items():
            hash_, upstream = _hash_and_upstream(record)
            if hash_ is None and upstream is None:
                inputs.append(f"{_names.get(name) or _quoted_name(name)}:{_NULL_INPUT}")
            else:
                inputs.append(
                    f'{_quote(name)}:{{"hash":{"null" if hash_ is None else _quote(hash_)},'
                    f'"upstream":{"null" if upstream is None else _quote(upstream)}}}'
                )
        t = event["t"]
        if t - t:
            return encode_event(event)  # NaN or infinity
        if pending and next(reversed(event)) != "pending":
            return encode_event(event)  # not last: the generic encoder keeps the order
        if flow_run_id is None:
            flow_text = "null"
        else:
            memo = _flow_memo
            if memo[0] is not flow_run_id:
                memo = _flow_memo = (flow_run_id, _quote(flow_run_id))
            flow_text = memo[1]
        text = (
            f'{{"ev":"task_run","id":{_quoted_id(event["id"])},"flow_run_id":{flow_text},'
            f'"task_name":{_names.get(task_name) or _quoted_name(task_name)},'
            f'"name":{_quote(event["name"])},'
            f'"tags":[{",".join([_quote(tag) for tag in tags]) if tags else ""}],'
            f'"cache_key":{"null" if cache_key is None else _quote(cache_key)},'
            f'"inputs":{{{",".join(inputs)}}},"t":{_float(t)}'
            f"{_PENDING_FIELD if pending else ''}}}\n"
        )
    except (TypeError, KeyError, ValueError):
        return encode_event(event)
    return text.encode("utf-8", "surrogatepass")


def implies_pending(run: Any, state: Any, before: list[dict]) -> bool:
    """Whether ``state`` is the plain Pending that ``before``'s task run creation implies.

    Then the creation line carries ``"pending": true`` and no state line is written: the
    fold reads it as a Pending state at the creation's time (one line of four fewer per
    task run). Anything else about the state (a message, a result, another time) keeps
    its own line.
    """
    created = before[-1]
    return (
        created.get("ev") == "task_run"
        and created.get("id") == run.id
        and state.type._value_ == "PENDING"
        and state.name == "Pending"
        and state.message is None
        and created.get("t") == state.timestamp
        and not run.run_count
        and run.start_time is None
        and run.end_time is None
    )


def _hash_and_upstream(record: dict) -> tuple[str | None, str | None]:
    """An input record's two fields, in the order the journal writes them (else ValueError)."""
    if type(record) is not dict or len(record) != 2:
        raise ValueError("not an input record")
    (k1, hash_), (k2, upstream) = record.items()
    if k1 != "hash" or k2 != "upstream":
        raise ValueError("not an input record")
    return hash_, upstream
