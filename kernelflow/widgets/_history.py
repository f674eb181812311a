"""Run history: browse the store's flow runs, newest first, and open one.

``RunHistory()`` (and ``%kf runs``) shows filters (flow, state, date range),
a page of flow runs and, for the selected run, its task runs, a timeline (the
start and end of each task run on one time axis) and its log lines. The data
comes from :mod:`kernelflow.store.queries`, read when the widget is made, on
*Refresh*, and every :data:`POLL_SECONDS` while the widget is on screen: the
browser reports visibility, so a hidden or scrolled-away history never
queries the store.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from typing import Any

import ipywidgets

from kernelflow._format import format_duration
from kernelflow.errors import RunNotFoundError
from kernelflow.widgets._faults import report
from kernelflow.widgets._history_data import flow_names, load_page, load_run
from kernelflow.widgets._html import (
    badge,
    esc,
    format_time,
    html_table,
    pre,
    root,
    text_table,
    timeline_svg,
)
from kernelflow.widgets._ticker import ticker
from kernelflow.widgets._view import LiveHTML, with_fallbacks

__all__ = ["POLL_SECONDS", "RunHistory"]

#: Seconds between two refreshes while the history is on screen.
POLL_SECONDS = 5.0
_ALL = "(all)"
_STATES = (
    _ALL,
    "Running",
    "Completed",
    "Cached",
    "Failed",
    "TimedOut",
    "Crashed",
    "Cancelled",
    "Pending",
    "Scheduled",
)


def render_history_html(
    rows: list[dict],
    total: int,
    page: int,
    page_size: int,
    selected: str | None,
    detail: dict | None,
    note: str | None,
    live: bool = True,
) -> str:
    """The page of runs and the opened run as HTML."""
    parts = []
    if note:
        parts.append(f'<div data-kf-note style="color:#b45309">{esc(note)}</div>')
    if not rows:
        parts.append('<div style="opacity:.75">No flow runs match.</div>')
    else:
        first = page * page_size + 1
        parts.append(
            f'<div style="opacity:.75">Runs {first:,} to {first + len(rows) - 1:,} of '
            f"{total:,}, newest first{'; click one to open it' if live else ''}</div>"
        )
        cells = [
            [
                esc(format_time(r["created"])),
                esc(r["flow"]),
                esc(r["name"]),
                badge(r["state"], r["type"]),
                esc(format_duration(r["duration"]) if r["duration"] is not None else ""),
                f"{r['task_runs']:,}",
            ]
            for r in rows
        ]
        parts.append(
            html_table(
                ("Created", "Flow", "Run", "State", "Duration", "Task runs"),
                cells,
                ids=[r["id"] for r in rows] if live else None,
                selected=selected,
            )
        )
    if detail is not None:
        parts.append(
            '<div data-kf-detail style="margin-top:10px;padding-top:6px;'
            f'border-top:1px solid #9ca3af">{render_run_detail(detail)}</div>'
        )
    return root("".join(parts), "history")


def render_run_detail(detail: dict) -> str:
    """One stored flow run: header, task runs, timeline, logs."""
    if detail.get("deleted"):
        return (
            f'<div data-kf-deleted style="color:#dc2626">Flow run {esc(detail["id"])} is no '
            "longer in the store (it was deleted).</div>"
        )
    head = (
        f'<div style="font-weight:700">{esc(detail["flow"])} · {esc(detail["name"])} '
        f'{badge(detail["state"], detail["type"])} <span style="font-weight:400;'
        f'opacity:.75">{esc(format_duration(detail["duration"]))}</span></div>'
    )
    parts = [head]
    if detail.get("message") and detail.get("type") in ("FAILED", "CRASHED"):
        parts.append(f'<div style="color:#dc2626">{esc(detail["message"])}</div>')
    tasks = detail["tasks"]
    if tasks:
        cells = [
            [
                esc(t["name"]),
                badge(t["state"], t["type"]),
                esc(format_duration(t["duration"]) if t["duration"] is not None else ""),
                esc(t["tries"] if t["tries"] is not None else ""),
                "yes" if t["cached"] else "",
            ]
            for t in tasks[:200]
        ]
        parts.append(html_table(("Task run", "State", "Duration", "Tries", "Cached"), cells))
        if len(tasks) > 200:
            parts.append(f'<div style="opacity:.7">… and {len(tasks) - 200:,} more</div>')
        failed = [t for t in tasks if t["type"] in ("FAILED", "CRASHED") and t["message"]]
        for t in failed[:20]:
            parts.append(
                f'<div data-kf-error style="color:#dc2626">{esc(t["name"])}: '
                f"{esc(t['message'])}</div>"
            )
        parts.append('<div style="margin-top:6px;font-weight:600">Timeline</div>')
        parts.append(timeline_svg([(t["name"], t["start"], t["end"], t["state"]) for t in tasks]))
    else:
        parts.append('<div style="opacity:.75">No task runs.</div>')
    parts.append('<div style="margin-top:6px;font-weight:600">Logs</div>')
    parts.append(
        pre("\n".join(detail["logs"]), "logs")
        if detail["logs"]
        else '<div style="opacity:.75">No log lines.</div>'
    )
    return "".join(parts)


def render_history_text(rows: list[dict], total: int, detail: dict | None) -> str:
    """The page of runs (and the opened run) as text."""
    if not rows:
        return "No flow runs match."
    table = text_table(
        ("created", "flow", "run", "state", "duration", "task runs", "id"),
        [
            (
                format_time(r["created"]),
                r["flow"],
                r["name"],
                r["state"],
                format_duration(r["duration"]) if r["duration"] is not None else "",
                r["task_runs"],
                r["id"][:8],
            )
            for r in rows
        ],
    )
    lines = [f"{total:,} flow runs, newest first", table]
    if detail is not None and not detail.get("deleted"):
        lines.append(f"\n{detail['flow']} · {detail['name']} · {detail['state']}")
        lines.append(
            text_table(
                ("task run", "state", "duration", "tries"),
                [
                    (t["name"], t["state"], format_duration(t["duration"]), t["tries"])
                    for t in detail["tasks"]
                ],
            )
        )
    return "\n".join(lines)


class RunHistory(ipywidgets.VBox):
    """Browse the store's flow runs: filter, page, open one.

    Parameters
    ----------
    flow:
        Show only this flow's runs at first (``None``: every flow).
    state:
        Show only runs in this state at first (e.g. ``"Failed"``).
    page_size:
        Runs per page.

    Example
    -------
    >>> from kernelflow.widgets import RunHistory
    >>> RunHistory(state="Failed")  # doctest: +SKIP
    """

    def __init__(
        self, flow: str | None = None, state: str | None = None, page_size: int = 20
    ) -> None:
        self.page = 0
        self.page_size = int(page_size)
        self.rows: list[dict] = []
        self.total = 0
        self.selected: str | None = None
        self.detail: dict | None = None
        self.note: str | None = None
        self._last_refresh = 0.0
        from kernelflow.store.queries import session, watch_lag

        with ExitStack() as reading:
            # The flow names and the first page share one connection to the store.
            lag = reading.enter_context(watch_lag())
            _safe(lambda: reading.enter_context(session()), None)
            self._build(flow, state, _safe(flow_names, []))
            self.refresh()
        if lag and self.note is None:  # the shared connection found the store behind
            self.note = lag[0]
            self._render()

    def _build(self, flow: str | None, state: str | None, names: list[str]) -> None:
        """Make the filters, buttons and table (``names``: the flows to offer)."""
        if flow and flow not in names:
            names.append(flow)
        style = {"description_width": "initial"}
        self.flow_filter = ipywidgets.Dropdown(
            options=[_ALL, *names], value=flow or _ALL, description="Flow", style=style
        )
        self.state_filter = ipywidgets.Dropdown(
            options=list(dict.fromkeys([*_STATES, *([state] if state else [])])),
            value=state or _ALL,
            description="State",
            style=style,
        )
        self.since = ipywidgets.DatePicker(description="From", style=style)
        self.until = ipywidgets.DatePicker(description="To", style=style)
        self.refresh_button = ipywidgets.Button(description="Refresh", icon="refresh")
        self.previous_button = ipywidgets.Button(description="Newer", icon="arrow-left")
        self.next_button = ipywidgets.Button(description="Older", icon="arrow-right")
        self.table = LiveHTML(on_click=self._clicked)
        # This view's own reaction to being shown or hidden (LiveHTML calls the hook).
        self.table.on_visibility = self._visibility  # type: ignore[method-assign]
        for control in (self.flow_filter, self.state_filter, self.since, self.until):
            control.observe(self._filters_changed, names="value")
        self.refresh_button.on_click(lambda _button: self.refresh())
        self.previous_button.on_click(lambda _button: self._turn(-1))
        self.next_button.on_click(lambda _button: self._turn(1))
        layout = ipywidgets.Layout(flex_flow="row wrap")
        super().__init__(
            [
                ipywidgets.HBox(
                    [self.flow_filter, self.state_filter, self.since, self.until], layout=layout
                ),
                ipywidgets.HBox(
                    [self.refresh_button, self.previous_button, self.next_button], layout=layout
                ),
                self.table,
            ]
        )

    # --- data ---------------------------------------------------------------------------
    def refresh(self) -> None:
        """Read the current page (and the opened run) from the store again."""
        self._last_refresh = time.monotonic()
        from kernelflow.store.queries import session, watch_lag

        try:
            flow = None if self.flow_filter.value == _ALL else self.flow_filter.value
            state = None if self.state_filter.value == _ALL else self.state_filter.value
            with watch_lag() as lag, session():
                self.rows, self.total = load_page(
                    flow, state, self.since.value, self.until.value, self.page, self.page_size
                )
            # A big backlog is folded elsewhere meanwhile: say the page may lack the newest runs.
            self.note = lag[0] if lag else None
        except Exception as exc:  # the store may be locked or unreadable for a moment
            report("reading the run history", exc)
            self.note = f"Could not read the store: {exc}"
        if self.selected is not None:
            self.detail = self._load_detail(self.selected)
        self.previous_button.disabled = self.page == 0
        self.next_button.disabled = (self.page + 1) * self.page_size >= self.total
        self._render()

    def _load_detail(self, flow_run_id: str) -> dict | None:
        try:
            return load_run(flow_run_id)
        except RunNotFoundError:
            return {"id": flow_run_id, "deleted": True}
        except Exception as exc:
            report("reading a flow run", exc)
            self.note = f"Could not read run {flow_run_id}: {exc}"
            return None

    def _render(self) -> None:
        self.table.html = render_history_html(
            self.rows, self.total, self.page, self.page_size, self.selected, self.detail, self.note
        )

    def select(self, flow_run_id: str | None) -> None:
        """Open a flow run (or close it when it is open)."""
        if flow_run_id == self.selected or flow_run_id is None:
            self.selected, self.detail = None, None
        else:
            self.selected = flow_run_id
            self.detail = self._load_detail(flow_run_id)
        self._render()

    # --- events -------------------------------------------------------------------------
    def _clicked(self, row_id: str, _action: str) -> None:
        self.select(row_id)

    def _filters_changed(self, _change: Any) -> None:
        self.page = 0
        self.refresh()

    def _turn(self, step: int) -> None:
        self.page = max(0, self.page + step)
        self.refresh()

    def _visibility(self, visible: bool) -> None:
        if visible:
            ticker.add(self)
        else:
            ticker.discard(self)

    def tick(self) -> bool:
        """Refresh every :data:`POLL_SECONDS` while on screen (the ticker calls this)."""
        if not self.table.visible or self.table.comm is None:
            return True  # hidden or closed: stop until the browser shows it again
        if time.monotonic() - self._last_refresh >= POLL_SECONDS:
            self.refresh()
        return False

    # --- fallbacks ------------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return with_fallbacks(
            super()._repr_mimebundle_(**kwargs),
            lambda: render_history_html(
                self.rows,
                self.total,
                self.page,
                self.page_size,
                None,
                self.detail,
                self.note,
                live=False,
            ),
            lambda: render_history_text(self.rows, self.total, self.detail),
        )


def _safe(fn: Any, default: Any) -> Any:
    try:
        return fn()
    except Exception as exc:
        report("reading the store for a widget", exc)
        return default
