"""The session's memory of its ``%%task`` cells: who produced which value, who used it.

Each run of a ``%%task`` cell leaves a :class:`CellRecord`: the values it read
(name -> hash) and the values it produced. :class:`Lineage` keeps the latest
record per cell and, per variable, its latest producer; from those it answers
"which cell fed this input" (recorded in the store as the input's
``upstream`` task run) and "which cells are stale" (:mod:`kernelflow.kernel.stale`).

The store keeps the full history (``task_runs.inputs`` / ``outputs``); this
in-memory view covers the current kernel, which is what ``%kf stale`` and
``%kf rerun`` act on.

Cells are identified by their task name. A cell without an explicit name is
named after its first output; in Jupyter, where each cell has an id, the name
is fixed per cell id for the session (an edited cell keeps its name), and a
second cell whose first output is the same gets ``name-2``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from kernelflow.kernel.why import KeyParts

__all__ = ["CellRecord", "Lineage", "Producer"]


@dataclass
class CellRecord:
    """The latest run of one ``%%task`` cell.

    Attributes
    ----------
    name
        The cell's task name.
    line, body
        The ``%%task`` arguments and the cell body, to run it again.
    cell_id
        The front end's cell id, when known.
    inputs, outputs
        Name -> value hash (None when a value cannot be hashed).
    changed
        Inputs the run changed in place (also in ``outputs``, with their new hash).
    not_cached
        Why the run could not be cached (``%%task`` without ``--no-cache``), if so.
    helpers
        Notebook helpers the cell used (name -> code hash).
    task_run_id, state, cached, duration, ran_at
        How the run went.
    seq
        The session-wide order of runs; consumption happens after production.
    parts, key
        The cache key's parts and the key (None with ``--no-cache``).
    miss_reasons
        Why the run did not use the cache, one line each (None for a hit).
    upstream
        Input name -> the cell whose output it was.
    options
        The parsed ``%%task`` flags (a :class:`~kernelflow.kernel.execute.CellOptions`).
    imports
        Names the cell binds only by ``import`` (restored on a hit, but not
        what the cell makes: ``%kf info`` lists them apart from its outputs).
    """

    name: str
    line: str
    body: str
    cell_id: str | None
    inputs: dict[str, str | None] = field(default_factory=dict)
    outputs: dict[str, str | None] = field(default_factory=dict)
    changed: list[str] = field(default_factory=list)
    not_cached: dict[str, str] | None = None
    helpers: dict[str, str] = field(default_factory=dict)
    task_run_id: str | None = None
    state: str = "Pending"
    cached: bool = False
    duration: float | None = None
    ran_at: float | None = None
    seq: int = 0
    parts: KeyParts | None = None
    key: str | None = None
    miss_reasons: list[str] | None = None
    upstream: dict[str, str] = field(default_factory=dict)
    options: Any = None
    imports: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Producer:
    """The latest ``%%task`` run that produced a variable."""

    cell: str
    task_run_id: str | None
    value_hash: str | None
    seq: int


class Lineage:
    """The cells of this kernel session and the values between them."""

    def __init__(self) -> None:
        self.cells: dict[str, CellRecord] = {}
        self.producers: dict[str, Producer] = {}
        self._names_by_cell_id: dict[str, str] = {}
        self._seq = itertools.count(1)

    # --- naming ------------------------------------------------------------
    def name_for(self, explicit: str | None, base: str, cell_id: str | None) -> str:
        """The task name of a cell: explicit, else fixed per cell id, else ``base``."""
        if explicit:
            if cell_id:
                self._names_by_cell_id[cell_id] = explicit
            return explicit
        if not cell_id:
            return base
        known = self._names_by_cell_id.get(cell_id)
        if known is not None:
            return known
        taken = {n for cid, n in self._names_by_cell_id.items() if cid != cell_id}
        name = base
        for n in itertools.count(2):
            if name not in taken:
                break
            name = f"{base}-{n}"
        self._names_by_cell_id[cell_id] = name
        return name

    # --- recording ---------------------------------------------------------
    def upstream_of(self, name: str, value_hash: str | None) -> Producer | None:
        """The cell run that produced this very value of ``name``, if a cell did."""
        producer = self.producers.get(name)
        if producer is None or value_hash is None or producer.value_hash != value_hash:
            return None
        return producer

    def record(self, record: CellRecord) -> CellRecord:
        """Keep ``record`` as its cell's latest run; its outputs' producer is now this cell."""
        record.seq = next(self._seq)
        self.cells[record.name] = record
        for variable, value_hash in record.outputs.items():
            self.producers[variable] = Producer(
                record.name, record.task_run_id, value_hash, record.seq
            )
        return record

    def find(self, name: str) -> CellRecord | None:
        """A cell by task name, else the cell that last produced the variable ``name``."""
        record = self.cells.get(name)
        if record is not None:
            return record
        producer = self.producers.get(name)
        return self.cells.get(producer.cell) if producer is not None else None

    def ordered(self) -> list[CellRecord]:
        """Cells in the order of their latest runs."""
        return sorted(self.cells.values(), key=lambda r: r.seq)

    def edges(self) -> list[tuple[str, str, str]]:
        """(producer cell, consumer cell, variable) for every value handed between cells."""
        return [
            (producer, record.name, variable)
            for record in self.ordered()
            for variable, producer in record.upstream.items()
        ]

    def snapshot(self) -> dict[str, Any]:
        """A plain-data view (for widgets and tests)."""
        return {
            name: {"inputs": r.inputs, "outputs": r.outputs, "seq": r.seq, "state": r.state}
            for name, r in self.cells.items()
        }
