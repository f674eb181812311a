"""Lineage view: a notebook's ``%%task`` cells as a graph, stale cells marked.

``LineageView()`` (and ``%kf graph``) reads the store: each ``%%task`` run
records its inputs (name -> value hash and the task run that produced it)
and its outputs (name -> value hash). Taking each cell's latest run, an edge
``producer -> consumer`` is drawn for every input some other cell produced,
labelled with the variable. A cell is **stale** when a producer ran again
after it and made a different value of a variable it read, or when it read
from a stale cell (the same rule as ``%kf stale``). The graph is an SVG,
laid out in layers (a cell sits one layer right of its furthest producer).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import ipywidgets

from kernelflow.widgets._faults import report
from kernelflow.widgets._history_data import _epoch
from kernelflow.widgets._html import STATE_COLORS, badge, esc, format_time, root, text_table
from kernelflow.widgets._view import LiveHTML, with_fallbacks

__all__ = ["Cell", "Graph", "LineageView", "load_graph"]


@dataclass
class Cell:
    """The latest run of one ``%%task`` cell, as the graph shows it."""

    name: str
    run_id: str
    state: str
    created: float | None
    inputs: dict[str, dict] = field(default_factory=dict)
    outputs: dict[str, str | None] = field(default_factory=dict)
    stale: list[str] = field(default_factory=list)
    layer: int = 0


@dataclass
class Graph:
    """Cells (in the order of their latest runs) and ``(producer, consumer, variable)`` edges."""

    notebook: str | None
    cells: list[Cell]
    edges: list[tuple[str, str, str]]


def _json(value: Any) -> dict:
    if value is None or (isinstance(value, float) and value != value):
        return {}
    if isinstance(value, dict):
        return value
    try:
        loaded = json.loads(value)
    except (TypeError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def default_notebook() -> str | None:
    """The flow name of this kernel's notebook session, when there is one."""
    from kernelflow import context
    from kernelflow.deployments.from_code import notebook_path

    session = context.session_flow_context()
    inner = getattr(session, "_session", None)
    name = getattr(inner, "name", None)
    return name or notebook_path()


def load_graph(notebook: str | None = None) -> Graph:
    """The lineage graph of a notebook's ``%%task`` cells, from the store.

    Parameters
    ----------
    notebook:
        The notebook session's flow name (default: this kernel's notebook; with
        none, every ``%%task`` cell in the store).
    """
    from kernelflow.store.lineage import cell_runs

    notebook = notebook or default_notebook()
    frame = cell_runs(notebook)
    producer_of: dict[str, str] = {}
    latest: dict[str, Cell] = {}
    for record in frame.to_dict("records"):
        producer_of[record["id"]] = record["task_name"]
        latest.pop(record["task_name"], None)  # re-inserted: dict order = latest-run order
        latest[record["task_name"]] = Cell(
            name=record["task_name"],
            run_id=record["id"],
            state=record["state_name"],
            created=_epoch(record["created"]),
            inputs=_json(record["inputs"]),
            outputs=_json(record["outputs"]),
        )
    cells = list(latest.values())
    order = {cell.name: index for index, cell in enumerate(cells)}
    edges: list[tuple[str, str, str]] = []
    stale: set[str] = set()
    for cell in cells:
        for variable, read in cell.inputs.items():
            upstream = read.get("upstream") if isinstance(read, dict) else None
            producer = producer_of.get(upstream) if upstream else None
            if producer is None or producer == cell.name or producer not in latest:
                continue
            edges.append((producer, cell.name, variable))
            source = latest[producer]
            made_again = order[producer] > order[cell.name]
            if (
                made_again
                and variable in source.outputs
                and source.outputs[variable] != read.get("hash")
            ):
                cell.stale.append(f"'{variable}' changed (re-made by cell '{producer}')")
            elif producer in stale:
                cell.stale.append(f"'{variable}' comes from stale cell '{producer}'")
        if cell.stale:
            stale.add(cell.name)
        producers = [latest[p].layer for p, c, _ in edges if c == cell.name]
        cell.layer = max(producers) + 1 if producers else 0
    return Graph(notebook, cells, edges)


_BOX_W, _BOX_H, _GAP_X, _GAP_Y = 150, 44, 70, 18


def render_graph_svg(graph: Graph, selected: str | None = None, live: bool = True) -> str:
    """The graph as an SVG: one box per cell, arrows labelled with variables."""
    if not graph.cells:
        return '<div style="opacity:.75">No %%task cells recorded for this notebook yet.</div>'
    layers: dict[int, list[Cell]] = {}
    for cell in graph.cells:
        layers.setdefault(cell.layer, []).append(cell)
    position: dict[str, tuple[float, float]] = {}
    for layer, members in layers.items():
        for index, cell in enumerate(members):
            position[cell.name] = (10 + layer * (_BOX_W + _GAP_X), 10 + index * (_BOX_H + _GAP_Y))
    width = 20 + (max(layers) + 1) * (_BOX_W + _GAP_X) - _GAP_X
    height = 20 + max(len(m) for m in layers.values()) * (_BOX_H + _GAP_Y) - _GAP_Y
    parts = [
        f'<svg data-kf-graph xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" style="font-size:12px;font-family:inherit">'
        '<defs><marker id="kf-arrow" viewBox="0 0 10 10" refX="10" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0L10,5L0,10z" '
        'fill="#6b7280"/></marker></defs>'
    ]
    for producer, consumer, variable in graph.edges:
        x1, y1 = position[producer]
        x2, y2 = position[consumer]
        x1, y1, y2 = x1 + _BOX_W, y1 + _BOX_H / 2, y2 + _BOX_H / 2
        parts.append(
            f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#6b7280" '
            f'stroke-width="1.5" marker-end="url(#kf-arrow)"/>'
            f'<text x="{(x1 + x2) / 2}" y="{(y1 + y2) / 2 - 4}" text-anchor="middle" '
            f'fill="currentColor">{esc(variable)}</text>'
        )
    for cell in graph.cells:
        x, y = position[cell.name]
        color = STATE_COLORS.get(cell.state, "#6b7280")
        stroke = (
            'stroke="#d97706" stroke-width="3" stroke-dasharray="6 3"'
            if cell.stale
            else f'stroke="{color}" stroke-width="2"'
        )
        if cell.name == selected:
            stroke = 'stroke="#2563eb" stroke-width="3"'
        click = f' data-kf-id="{esc(cell.name)}" style="cursor:pointer"' if live else ""
        label = cell.name if len(cell.name) <= 18 else cell.name[:17] + "…"
        status = "stale" if cell.stale else cell.state
        parts.append(
            f'<g data-kf-cell="{esc(cell.name)}"{click}>'
            f'<rect x="{x}" y="{y}" width="{_BOX_W}" height="{_BOX_H}" rx="6" '
            f'fill="rgba(156,163,175,.12)" {stroke}/>'
            f'<text x="{x + 8}" y="{y + 18}" font-weight="600" fill="currentColor">'
            f"{esc(label)}</text>"
            f'<text x="{x + 8}" y="{y + 35}" fill="{"#d97706" if cell.stale else color}">'
            f"{esc(status)}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _count(n: int, noun: str) -> str:
    """``1 hand-over``, ``2 hand-overs``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def render_lineage_html(
    graph: Graph, selected: str | None, note: str | None, live: bool = True
) -> str:
    """Header, graph and the opened cell's details."""
    stale = [c for c in graph.cells if c.stale]
    title = f"Lineage of {graph.notebook}" if graph.notebook else "Lineage of %%task cells"
    parts = [
        f'<div style="font-weight:700">{esc(title)}: {_count(len(graph.cells), "cell")}, '
        f"{_count(len(graph.edges), 'hand-over')}, {len(stale)} stale</div>"
    ]
    if note:
        parts.append(f'<div data-kf-note style="color:#b45309">{esc(note)}</div>')
    parts.append(render_graph_svg(graph, selected, live))
    cell = next((c for c in graph.cells if c.name == selected), None)
    if cell is not None:
        lines = [
            f'<div style="font-weight:600">{esc(cell.name)} {badge(cell.state)} '
            f'<span style="font-weight:400;opacity:.75">last run '
            f"{esc(format_time(cell.created))}</span></div>",
            f"<div>inputs: {esc(', '.join(cell.inputs) or 'none')}</div>",
            f"<div>outputs: {esc(', '.join(cell.outputs) or 'none')}</div>",
        ]
        lines += [f'<div style="color:#d97706">stale: {esc(r)}</div>' for r in cell.stale]
        parts.append('<div data-kf-detail style="margin-top:6px">' + "".join(lines) + "</div>")
    elif live and graph.cells:
        parts.append(
            '<div style="opacity:.6;font-size:11px">Click a cell for its inputs and outputs.</div>'
        )
    return root("".join(parts), "lineage")


def render_lineage_text(graph: Graph) -> str:
    """Cells and hand-overs as text."""
    if not graph.cells:
        return "No %%task cells recorded for this notebook yet."
    cells = text_table(
        ("cell", "state", "stale", "inputs", "outputs"),
        [
            (c.name, c.state, "; ".join(c.stale) or "", ", ".join(c.inputs), ", ".join(c.outputs))
            for c in graph.cells
        ],
    )
    edges = "\n".join(f"{p} --{v}--> {c}" for p, c, v in graph.edges) or "(no hand-overs)"
    return f"{cells}\n\n{edges}"


class LineageView(ipywidgets.VBox):
    """The ``%%task`` cells of a notebook as a graph of who feeds whom, stale cells marked.

    Parameters
    ----------
    notebook:
        The notebook (its session's flow name); default: this kernel's notebook.

    Example
    -------
    >>> from kernelflow.widgets import LineageView
    >>> LineageView()  # doctest: +SKIP
    """

    def __init__(self, notebook: str | None = None) -> None:
        self.notebook = notebook
        self.graph = Graph(notebook, [], [])
        self.selected: str | None = None
        self.note: str | None = None
        self.view = LiveHTML(on_click=self._clicked)
        self.refresh_button = ipywidgets.Button(description="Refresh", icon="refresh")
        self.refresh_button.on_click(lambda _button: self.refresh())
        super().__init__([self.refresh_button, self.view])
        self.refresh()

    def refresh(self) -> None:
        """Read the lineage from the store again."""
        try:
            self.graph = load_graph(self.notebook)
            self.note = None
        except Exception as exc:
            report("reading the lineage", exc)
            self.note = f"Could not read the store: {exc}"
        self._render()

    def _clicked(self, name: str, _action: str) -> None:
        self.selected = None if name == self.selected else name
        self._render()

    def _render(self) -> None:
        self.view.html = render_lineage_html(self.graph, self.selected, self.note)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return with_fallbacks(
            super()._repr_mimebundle_(**kwargs),
            lambda: render_lineage_html(self.graph, None, self.note, False),
            lambda: render_lineage_text(self.graph),
        )
