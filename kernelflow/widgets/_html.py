"""HTML building blocks every view shares: state badges, tables, the root element, a timeline.

HTML uses inline styles only: classic viewers and JupyterLab's sanitizer keep
them where they drop ``<style>`` blocks. The live run view
(:mod:`kernelflow.widgets._render`) and the store browsers (history, cache,
lineage) draw with these, so their badges and tables look alike; the text
table is the terminal's counterpart.
"""

from __future__ import annotations

import datetime as _dt
import html
from collections.abc import Sequence
from typing import Any

from kernelflow._format import format_duration

__all__ = [
    "STATE_COLORS",
    "badge",
    "esc",
    "format_time",
    "html_table",
    "pre",
    "root",
    "text_table",
    "timeline_svg",
]

#: Badge colours by state name (background), readable in light and dark themes.
STATE_COLORS = {
    "Scheduled": "#6b7280",
    "Late": "#b45309",
    "Pending": "#6b7280",
    "NotReady": "#6b7280",
    "Running": "#2563eb",
    "Retrying": "#d97706",
    "AwaitingRetry": "#d97706",
    "Paused": "#6b7280",
    "Cancelling": "#6b7280",
    "Cancelled": "#6b7280",
    "Completed": "#16a34a",
    "Cached": "#0d9488",
    "Failed": "#dc2626",
    "TimedOut": "#c2410c",
    "Crashed": "#7c3aed",
}
_TYPE_COLORS = {
    "RUNNING": "#2563eb",
    "COMPLETED": "#16a34a",
    "FAILED": "#dc2626",
    "CRASHED": "#7c3aed",
    "CANCELLED": "#6b7280",
}

_ROOT = (
    "font-family:var(--jp-ui-font-family,system-ui,sans-serif);font-size:13px;"
    "line-height:1.45;max-width:900px"
)
_TABLE = "border-collapse:collapse;width:100%;margin-top:6px"
_TH = (
    "text-align:left;padding:3px 8px;border-bottom:1px solid #9ca3af;font-weight:600;"
    "white-space:nowrap"
)
_TD = "padding:2px 8px;border-bottom:1px solid rgba(156,163,175,.35);vertical-align:top"
_PRE = (
    "white-space:pre-wrap;margin:4px 0;padding:6px;font-size:12px;max-height:18em;"
    "overflow:auto;background:rgba(156,163,175,.12);border-radius:4px"
)
_CLICK = "cursor:pointer"


def esc(value: Any) -> str:
    """HTML-escape ``value`` (None becomes the empty string)."""
    return "" if value is None else html.escape(str(value), quote=True)


def format_time(epoch: float | None) -> str:
    """Local wall-clock time of an epoch second: ``2025-03-01 14:02:07``."""
    if epoch is None:
        return ""
    return _dt.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


def badge(name: str | None, state_type: str | None = None) -> str:
    """A coloured state badge."""
    if not name:
        return ""
    color = STATE_COLORS.get(name) or _TYPE_COLORS.get(state_type or "", "#6b7280")
    return (
        f'<span data-kf-state="{esc(name)}" style="background:{color};color:#fff;'
        f"border-radius:9px;padding:0 7px;font-size:11px;font-weight:600;"
        f'white-space:nowrap">{esc(name)}</span>'
    )


def text_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], limit: int = 60) -> str:
    """A plain text table with aligned columns (at most ``limit`` rows, then a count)."""
    cells = [[str(h) for h in headers]] + [
        ["" if c is None else str(c) for c in r] for r in rows[:limit]
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if len(rows) > limit:
        lines.append(f"... and {len(rows) - limit:,} more")
    return "\n".join(lines)


def html_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    ids: Sequence[str | None] | None = None,
    selected: str | None = None,
    actions: Sequence[str | None] | None = None,
) -> str:
    """An HTML table; cells are HTML already (escape text with :func:`esc`).

    Parameters
    ----------
    headers, rows:
        Column titles and cell HTML.
    ids:
        Per row, the ``data-kf-id`` that makes it clickable (None: not clickable).
    selected:
        The id of the row to highlight.
    actions:
        Per row, a ``data-kf-action`` sent with the click.
    """
    head = "".join(f'<th style="{_TH}">{esc(h)}</th>' for h in headers)
    body = []
    for index, row in enumerate(rows):
        row_id = ids[index] if ids is not None else None
        attrs = ""
        if row_id is not None:
            style = _CLICK + (";background:rgba(37,99,235,.12)" if row_id == selected else "")
            attrs = f' data-kf-id="{esc(row_id)}" style="{style}"'
            if actions is not None and actions[index]:
                attrs += f' data-kf-action="{esc(actions[index])}"'
        cells = "".join(f'<td style="{_TD}">{cell}</td>' for cell in row)
        body.append(f"<tr{attrs}>{cells}</tr>")
    return (
        f'<table style="{_TABLE}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def root(content: str, view: str, now: float | None = None) -> str:
    """Wrap a view's HTML in its root element (font, clock for ticking times)."""
    import time

    now = time.time() if now is None else now
    return (
        f'<div data-kf-view="{esc(view)}" data-kf-now="{now:.3f}" style="{_ROOT}">{content}</div>'
    )


def pre(text: str, marker: str = "") -> str:
    """Preformatted text (logs, errors) in a scrolling box."""
    attr = f" data-kf-{marker}" if marker else ""
    return f'<pre{attr} style="{_PRE}">{esc(text)}</pre>'


def timeline_svg(
    spans: Sequence[tuple[str, float | None, float | None, str | None]],
    width: int = 640,
    row_height: int = 16,
    limit: int = 200,
) -> str:
    """Task runs on one time axis: one bar per ``(label, start, end, state name)``.

    Bars are coloured by state; a run without an end is drawn up to the latest
    time known. At most ``limit`` bars (the earliest), then a count.
    """
    known = [(label, s, e, st) for label, s, e, st in spans if s is not None]
    if not known:
        return '<div style="opacity:.7">No task run has started.</div>'
    shown = sorted(known, key=lambda item: item[1])[:limit]
    t0 = min(s for _, s, _, _ in shown)
    t1 = max(max((e or s) for _, s, e, _ in shown), t0 + 1e-3)
    label_w = 160
    plot_w = width - label_w - 10
    height = row_height * len(shown) + 22
    parts = [
        f'<svg data-kf-timeline xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" style="font-size:11px;font-family:inherit">'
    ]
    for index, (label, start, end, state) in enumerate(shown):
        y = index * row_height + 2
        x = label_w + (start - t0) / (t1 - t0) * plot_w
        w = max(2.0, ((end or t1) - start) / (t1 - t0) * plot_w)
        color = STATE_COLORS.get(state or "", "#6b7280")
        text = label if len(label) <= 24 else label[:23] + "…"
        parts.append(
            f'<text x="0" y="{y + row_height - 5}" fill="currentColor">{esc(text)}</text>'
            f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row_height - 4}" '
            f'rx="2" fill="{color}"><title>{esc(label)}: {esc(state)} '
            f"{esc(format_duration((end or t1) - start))}</title></rect>"
        )
    axis_y = row_height * len(shown) + 14
    parts.append(
        f'<text x="{label_w}" y="{axis_y}" fill="currentColor">0 s</text>'
        f'<text x="{width - 10}" y="{axis_y}" text-anchor="end" fill="currentColor">'
        f"{esc(format_duration(t1 - t0))}</text></svg>"
    )
    if len(known) > limit:
        parts.append(f'<div style="opacity:.7">… and {len(known) - limit:,} more task runs</div>')
    return "".join(parts)
