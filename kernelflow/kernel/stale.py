"""Stale cells: downstream ``%%task`` cells whose inputs were re-made differently.

A cell is stale when a variable it consumed was produced again, by a later run
of another ``%%task`` cell, with a different value hash than the one it read;
and, transitively, when it consumed a variable produced by a stale cell (that
cell will produce it anew). Cells are listed in dependency order: a cell reads
its inputs after they are produced, so the order of the cells' latest runs is a
topological order of the recorded hand-overs.
"""

from __future__ import annotations

from dataclasses import dataclass

from kernelflow.kernel.lineage import CellRecord, Lineage

__all__ = ["StaleCell", "stale_cells"]


@dataclass(frozen=True)
class StaleCell:
    """A cell to re-run, and why."""

    record: CellRecord
    reasons: tuple[str, ...]


def stale_cells(lineage: Lineage) -> list[StaleCell]:
    """The stale cells of a session, in dependency order."""
    found: list[StaleCell] = []
    stale_names: set[str] = set()
    for record in lineage.ordered():
        reasons: list[str] = []
        for variable, read_hash in record.inputs.items():
            producer = lineage.producers.get(variable)
            if producer is None or producer.cell == record.name:
                continue
            if producer.seq > record.seq and producer.value_hash != read_hash:
                reasons.append(f"'{variable}' changed (re-made by cell '{producer.cell}')")
            elif producer.cell in stale_names and record.upstream.get(variable) == producer.cell:
                reasons.append(f"'{variable}' comes from stale cell '{producer.cell}'")
        if reasons:
            found.append(StaleCell(record, tuple(reasons)))
            stale_names.add(record.name)
    return found
