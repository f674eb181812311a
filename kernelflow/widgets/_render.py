"""Turning snapshots into HTML and text: the one renderer of the live run view.

The live widget, the static HTML saved in a headless run's output and the
terminal's text table all come from these functions, so they always agree.
The building blocks (badges, tables, inline styles) are
:mod:`kernelflow.widgets._html`'s. Elements the browser keeps ticking
carry ``data-kf-since`` (elapsed time since an epoch second) or
``data-kf-until`` (a countdown), and the root carries ``data-kf-now`` (the
kernel's clock when rendered), so a live view shows time passing without a
message from the kernel. Clickable rows carry ``data-kf-id``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from kernelflow._format import format_duration
from kernelflow.widgets._html import (
    _CLICK,
    _PRE,
    _ROOT,
    _TABLE,
    _TD,
    _TH,
    STATE_COLORS,
    badge,
    esc,
    format_time,
    text_table,
)
from kernelflow.widgets._snapshot import Snapshot

__all__ = ["render_run_html", "render_run_text"]


def _ticking(start: float | None, end: float | None, now: float) -> str:
    if start is None:
        return ""
    if end is not None:
        return esc(format_duration(end - start))
    return f'<span data-kf-since="{start:.3f}">{esc(format_duration(now - start))}</span>'


def _progress(finished: int, total: int, failed: int) -> str:
    share = 100.0 * finished / total if total else 0.0
    color = "#dc2626" if failed else "#16a34a"
    return (
        '<div style="display:flex;align-items:center;gap:8px;margin-top:4px">'
        '<div style="flex:1;max-width:420px;height:8px;border-radius:4px;'
        'background:rgba(156,163,175,.35);overflow:hidden">'
        f'<div data-kf-progress="{share:.1f}" style="width:{share:.1f}%;height:100%;'
        f'background:{color}"></div></div>'
        f'<span style="white-space:nowrap">{finished:,} / {total:,} task runs finished</span>'
        "</div>"
    )


def _failed_count(snap: Snapshot) -> int:
    if snap.grouped:
        return sum(
            r["counts"].get(n, 0) for r in snap.rows for n in ("Failed", "TimedOut", "Crashed")
        )
    return sum(1 for r in snap.rows if r["state"] and r["state"]["type"] in ("FAILED", "CRASHED"))


def _state_cell(row: dict, now: float) -> str:
    state = row["state"]
    if state is None:
        return ""
    cell = badge(state["name"], state["type"])
    retry_at = row.get("retry_at")
    if state["name"] == "AwaitingRetry" and retry_at:
        left = max(0.0, retry_at - now)
        cell += (
            f' <span style="opacity:.75">try {row["tries"] + 1} in '
            f'<span data-kf-until="{retry_at:.3f}">{format_duration(left)}</span></span>'
        )
    return cell


def _run_rows(
    rows: Iterable[dict], now: float, selected: str | None, details: dict | None = None
) -> str:
    out = []
    for row in rows:
        state = row["state"] or {}
        ticking = state.get("type") == "RUNNING"
        duration = _ticking(row["start"], row["end"] if not ticking else None, now)
        if not ticking and row["end"] is None:
            duration = ""
        style = _CLICK + (";background:rgba(37,99,235,.12)" if row["id"] == selected else "")
        out.append(
            f'<tr data-kf-id="{esc(row["id"])}" style="{style}">'
            f'<td style="{_TD}">{esc(row["name"])}</td>'
            f'<td style="{_TD}">{_state_cell(row, now)}</td>'
            f'<td style="{_TD};white-space:nowrap">{duration}</td>'
            f'<td style="{_TD}">{row["tries"]}</td>'
            f'<td style="{_TD}">{"yes" if row["cached"] else ""}</td></tr>'
        )
        detail = (details or {}).get(row["id"])
        if detail is not None:
            # A static view has no kernel to ask: the run's details fold open in place.
            out.append(
                f'<tr data-kf-row-detail><td colspan="5" style="{_TD}"><details>'
                f'<summary style="cursor:pointer;opacity:.8">Logs and errors of '
                f"{esc(row['name'])}</summary>{_detail_html(detail, now, header=False)}"
                "</details></td></tr>"
            )
    return "".join(out)


def _group_rows(rows: Iterable[dict], selected: str | None) -> str:
    out = []
    for row in rows:
        counts = row["counts"]
        finished = sum(v for k, v in counts.items() if k in STATE_COLORS and _is_final_name(k))
        chips = " ".join(f"{badge(name)} {n:,}" for name, n in sorted(counts.items()))
        style = _CLICK + (";background:rgba(37,99,235,.12)" if row["id"] == selected else "")
        out.append(
            f'<tr data-kf-id="{esc(row["id"])}" style="{style}">'
            f'<td style="{_TD}">{esc(row["name"])}</td>'
            f'<td style="{_TD}">{chips}</td>'
            f'<td style="{_TD};white-space:nowrap">{finished:,} / {row["total"]:,}</td>'
            f'<td style="{_TD}">{row["retries"]:,}</td>'
            f'<td style="{_TD}">{row["cached"]:,}</td></tr>'
        )
    return "".join(out)


_FINAL_NAMES = frozenset({"Completed", "Cached", "Failed", "TimedOut", "Crashed", "Cancelled"})


def _is_final_name(name: str) -> bool:
    return name in _FINAL_NAMES


def _detail_html(detail: dict, now: float, header: bool = True) -> str:
    if detail["kind"] == "group":
        head = (
            f'<div style="font-weight:600">{esc(detail["name"])}: '
            f"{len(detail['rows'])} of {detail['total']:,} runs "
            "(failures first; click one for its logs)</div>"
        )
        return head + _run_table(detail["rows"], now, None)
    row = detail["row"]
    state = row["state"] or {}
    parts = []
    if header:
        parts.append(
            f'<div style="font-weight:600">{esc(row["name"])} '
            f"{badge(state.get('name'), state.get('type'))}"
            f' <span style="font-weight:400;opacity:.75">tries {row["tries"]}</span></div>'
        )
    for number, message in enumerate(detail.get("retry_errors") or (), start=1):
        parts.append(
            f'<div style="color:#d97706;margin-top:4px">Try {number} failed: {esc(message)}</div>'
        )
    if detail.get("error"):
        parts.append(
            f'<div style="color:#dc2626;margin-top:4px">Error</div>'
            f'<pre data-kf-error style="{_PRE}">{esc(detail["error"])}</pre>'
        )
    lines = detail.get("logs") or []
    if lines:
        text = "\n".join(
            f"{format_time(line.t)[11:]} | {line.level:<7} | {line.message}" for line in lines
        )
        parts.append(
            f'<div style="margin-top:4px">Logs</div><pre data-kf-logs style="{_PRE}">'
            f"{esc(text)}</pre>"
        )
    elif detail.get("logs_note"):
        parts.append(f'<div style="opacity:.75">{esc(detail["logs_note"])}</div>')
    else:
        parts.append('<div style="opacity:.75">No log lines.</div>')
    return "".join(parts)


def _run_table(
    rows: Sequence[dict], now: float, selected: str | None, details: dict | None = None
) -> str:
    head = "".join(
        f'<th style="{_TH}">{h}</th>' for h in ("Task run", "State", "Duration", "Tries", "Cached")
    )
    return (
        f'<table style="{_TABLE}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{_run_rows(rows, now, selected, details)}</tbody></table>"
    )


def _artifacts_html(artifacts: Sequence[dict]) -> str:
    """The artifacts of the runs shown: key, type, what each holds, description."""
    head = "".join(
        f'<th style="{_TH}">{h}</th>' for h in ("Artifact", "Type", "Summary", "Description")
    )
    rows = "".join(
        f'<tr><td style="{_TD}">{esc(a["key"] or "")}</td>'
        f'<td style="{_TD}">{esc(a["type"] or "")}</td>'
        f'<td style="{_TD}">{esc(a["summary"])}</td>'
        f'<td style="{_TD}">{esc(a["description"] or "")}</td></tr>'
        for a in artifacts
    )
    return (
        f'<table data-kf-artifacts style="{_TABLE}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


def _log_line(who: str, line: Any) -> str:
    return f"{format_time(line.t)[11:]} {line.level:<7} {who} - {line.message}"


def _logs_html(snap: Snapshot) -> str:
    """Warnings at once, then every log line of the runs shown in a collapsible block.

    ``<details>`` needs no script, so the saved static HTML folds the same way.
    """
    parts = []
    if snap.notices:
        shown = "\n".join(_log_line(who, line).split("\n", 1)[0] for who, line in snap.notices)
        parts.append(f'<pre data-kf-notices style="{_PRE};color:#b45309">{esc(shown)}</pre>')
    if snap.log_count:
        hidden = snap.log_count - len(snap.log_tail)
        head = f"{hidden:,} earlier lines in the store (kernelflow runs show)\n" if hidden else ""
        body = head + "\n".join(_log_line(who, line) for who, line in snap.log_tail)
        noun = "line" if snap.log_count == 1 else "lines"
        parts.append(
            f'<details data-kf-log style="margin-top:4px"><summary style="cursor:pointer;'
            f'opacity:.75">Log ({snap.log_count:,} {noun})</summary>'
            f'<pre style="{_PRE}">{esc(body)}</pre></details>'
        )
    return "".join(parts)


def render_run_html(snap: Snapshot, selected: str | None = None, live: bool = True) -> str:
    """The live run view as HTML: header, progress bar, task runs, artifacts, opened row.

    Parameters
    ----------
    snap:
        What to show.
    selected:
        The opened row's id, highlighted in the table.
    live:
        When False (static HTML for saved outputs) rows are not marked clickable.
    """
    state = snap.state or {}
    header = (
        f'<div style="display:flex;flex-wrap:wrap;align-items:baseline;gap:8px">'
        f'<span style="font-weight:700">{esc(snap.title)}</span>'
        f'<span style="opacity:.8">{esc(snap.subtitle)}</span>'
        f"{badge(state.get('name'), state.get('type'))}"
        f'<span style="opacity:.8">elapsed {_ticking(snap.start, snap.end, snap.now) or "—"}'
        "</span></div>"
    )
    parts = [f'<div data-kf-view="run" data-kf-now="{snap.now:.3f}" style="{_ROOT}">', header]
    if state.get("message") and state.get("type") in ("FAILED", "CRASHED", "CANCELLED"):
        parts.append(f'<div style="color:#dc2626">{esc(state["message"])}</div>')
    if snap.note:
        parts.append(f'<div data-kf-note style="color:#b45309">{esc(snap.note)}</div>')
    parts.append(_progress(snap.finished, snap.total, _failed_count(snap)))
    if snap.grouped:
        head = "".join(
            f'<th style="{_TH}">{h}</th>'
            for h in ("Task", "States", "Finished", "Retries", "Cached")
        )
        parts.append(
            f'<table style="{_TABLE}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{_group_rows(snap.rows, selected)}</tbody></table>"
        )
    elif snap.rows:
        parts.append(_run_table(snap.rows, snap.now, selected, snap.row_details))
    if snap.artifacts:
        parts.append(_artifacts_html(snap.artifacts))
    parts.append(_logs_html(snap))
    if snap.detail is not None:
        parts.append(
            f'<div data-kf-detail style="margin-top:8px;padding-top:6px;'
            f'border-top:1px solid #9ca3af">{_detail_html(snap.detail, snap.now)}</div>'
        )
    elif live and snap.rows:
        parts.append(
            '<div style="opacity:.6;font-size:11px;margin-top:2px">'
            "Click a row for its logs and error.</div>"
        )
    parts.append("</div>")
    out = "".join(parts)
    if not live:
        out = out.replace(f'style="{_CLICK}', 'style="')
    return out


def render_run_text(snap: Snapshot) -> str:
    """The live run view as plain text (terminal IPython, text-only front ends)."""
    state = snap.state or {}
    elapsed = ""
    if snap.start is not None:
        elapsed = format_duration((snap.end or snap.now) - snap.start)
    head = f"{snap.title} · {snap.subtitle} · {state.get('name', '')}"
    if elapsed:
        head += f" · {elapsed}"
    lines = [head, f"{snap.finished:,} / {snap.total:,} task runs finished"]
    if state.get("message") and state.get("type") in ("FAILED", "CRASHED", "CANCELLED"):
        lines.append(state["message"])
    if snap.note:
        lines.append(snap.note)
    rows: list[tuple[Any, ...]]  # one table's rows: each table has its own columns
    if snap.grouped:
        rows = [
            (
                r["name"],
                ", ".join(f"{k} {v:,}" for k, v in sorted(r["counts"].items())),
                f"{r['retries']:,}",
                f"{r['cached']:,}",
            )
            for r in snap.rows
        ]
        lines.append(text_table(("task", "states", "retries", "cached"), rows))
    elif snap.rows:
        rows = []
        for r in snap.rows:
            end = r["end"] if r["end"] is not None else (snap.now if r["start"] else None)
            duration = format_duration(end - r["start"]) if r["start"] and end else ""
            rows.append(
                (
                    r["name"],
                    (r["state"] or {}).get("name", ""),
                    duration,
                    r["tries"],
                    "yes" if r["cached"] else "",
                )
            )
        lines.append(text_table(("task run", "state", "duration", "tries", "cached"), rows))
    if snap.artifacts:
        rows = [
            (a["key"] or "", a["type"] or "", a["summary"], a["description"] or "")
            for a in snap.artifacts
        ]
        lines.append(text_table(("artifact", "type", "summary", "description"), rows))
    return "\n".join(lines)
