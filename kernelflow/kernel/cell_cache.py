"""The cache side of a ``%%task`` cell: what its key is made of, and whether a run is kept.

:class:`_Inputs` holds the hashed values a cell reads (its key's parts and its
lineage); :class:`_CellPolicy` is the cache policy the cell's private task
runs with, refusing entries made in another global state; after a run,
:func:`_save_run` finds the inputs the cell changed and saves them with the
outputs, and :func:`_problems`, :func:`_warn_uncached` and
:func:`_miss_reasons` say why a run was not cached, or missed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kernelflow.cache import CachePolicy
from kernelflow.kernel import hidden_state
from kernelflow.kernel.files import changed_written, keep_written, path_value
from kernelflow.kernel.lineage import CellRecord
from kernelflow.kernel.options import CellOptions
from kernelflow.kernel.outputs import MANIFEST_VERSION, identity_hash, save_outputs
from kernelflow.kernel.prepare import PreparedCell
from kernelflow.kernel.why import KeyParts, describe_changes

__all__: list[str] = []


@dataclass
class _Inputs:
    """The values a cell reads, hashed: what its key and lineage are made of.

    Attributes
    ----------
    parts
        The key's parts.
    hashes
        Every input by name -> its hash (None: excluded or unhashable), for lineage.
    values
        Keyed data inputs by name -> value, to see after the run which it changed.
    unhashable
        Inputs that cannot be hashed: name -> what they are. The cell then runs uncached.
    """

    parts: KeyParts
    hashes: dict[str, str | None] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    unhashable: dict[str, str] = field(default_factory=dict)


class _CellPolicy(CachePolicy):
    """A cache policy whose key part was computed before the run (by :class:`CellRunner`).

    It refuses entries the key cannot vouch for (see :mod:`.hidden_state`), and
    remembers why, for ``%kf why``.
    """

    uses_inputs = True

    def __init__(self, part: str) -> None:
        self.part = part
        self.refused: str | None = None

    def key_part(self, ctx: Any, inputs: dict[str, Any], hashes: dict[str, str]) -> str:
        return self.part

    def refuse(self, value: Any) -> str | None:
        if not isinstance(value, dict) or value.get("version") != MANIFEST_VERSION:
            self.refused = "its cached result was written by an older kernelflow"
        else:
            self.refused = hidden_state.check(value.get("globals")) or changed_written(
                value.get("writes") or {}
            )
        return self.refused

    def __repr__(self) -> str:
        return "CELL"


def _save_run(
    manifest: dict[str, Any],
    prepared: PreparedCell,
    shell: Any,
    name: str,
    inputs: _Inputs,
    run_info: dict[str, Any],
) -> None:
    """Find the inputs the run changed in place, and save them with the outputs.

    An input name bound to another object after the run (a helper's ``global``
    statement did it) is saved as an output; one the cell deleted is deleted
    again on a hit.
    """
    from kernelflow.hashing import hash_value
    from kernelflow.kernel.dependencies import lookup

    ns = shell.user_ns
    outputs = set(manifest["names"])
    changed: dict[str, Any] = {}
    problems: dict[str, str] = {}
    deleted = [n for n in prepared.analysis.deletes if n not in ns]
    for variable, value in inputs.values.items():
        if variable in outputs:
            continue
        try:
            live = lookup(ns, variable)
        except KeyError:  # the cell (or a helper) deleted it
            deleted.append(variable)
            continue
        if live is not value:
            manifest["names"].append(variable)
            manifest["hashes"][variable] = identity_hash(live, variable)
            continue
        try:
            digest = hash_value(live, name=variable)
        except Exception:  # it could be hashed before the run: the cell broke it
            problems[variable] = "changed in place, and can no longer be hashed"
            continue
        if digest != inputs.hashes.get(variable):
            changed[variable] = live
            manifest["hashes"][variable] = digest
    if deleted:
        manifest["deleted"] = list(dict.fromkeys(deleted))
    analysis = prepared.analysis
    written = list(analysis.write_literals)
    written += [p for p in (path_value(ns.get(n)) for n in analysis.write_names) if p]
    if written:
        manifest["writes"] = keep_written(list(dict.fromkeys(written)), name)
    if not problems:
        problems = save_outputs(manifest, changed, run_info.pop("parts"), shell, name)
    run_info["problems"] = problems


def _problems(
    prepared: PreparedCell, unhashable: dict[str, str], unsaveable: dict[str, str]
) -> dict[str, str]:
    """What kept a run from being cached: name -> why (one line each)."""
    found = {f"'{name}'": f"{what}, cannot be hashed" for name, what in unhashable.items()}
    found.update({f"'{name}'": why for name, why in unsaveable.items()})
    found.update(prepared.analysis.opaque)
    return found


def _warn_uncached(prepared: PreparedCell, cell: str, problems: dict[str, str]) -> None:
    """One :class:`CacheWarning` naming everything that kept the cell from being cached."""
    import warnings

    from kernelflow.errors import CacheWarning

    listed = "; ".join(f"{name}: {why}" for name, why in problems.items())
    advice = []
    if any(why.endswith("cannot be hashed") for why in problems.values()):
        advice.append("--exclude NAME for an input that does not change the result")
    if any(name.startswith("'!") or name.startswith("'%") for name in problems):
        advice.append("a cell of its own for the shell command or magic")
    if len(advice) < len(problems) or not advice:
        advice.append("del NAME at the end of the cell for an output")
    warnings.warn_explicit(
        f"%%task cell {cell!r} ran but is not cached ({listed}). Use "
        + ", ".join(advice)
        + ", or --no-cache.",
        CacheWarning,
        prepared.filename,
        prepared.analysis.binding_lines.get(next(iter(problems)).strip("'"), 0) + 1,
    )


def _miss_reasons(
    previous: dict | None, record: CellRecord, options: CellOptions, refused: str | None
) -> list[str]:
    if options.refresh:
        return ["--refresh asked to run it again"]
    if refused is not None:
        return [f"a cached run was found but not used: {refused}"]
    if previous is None:
        return ["no cached run of this cell was recorded before"]
    if previous.get("key") == record.key:
        return ["its cached result had expired or was cleared (same code and inputs)"]
    parts = record.parts
    changes = describe_changes(previous["parts"], parts) if parts is not None else []
    return changes or ["the cache key changed (kernelflow or Python was upgraded)"]
