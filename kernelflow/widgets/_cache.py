"""Cache browser: the task cache's entries, their sizes and use, with delete.

``CacheBrowser()`` (and ``%kf cache``) lists every entry of
:mod:`kernelflow.store.cache_index` (task, key prefix, size, created, last hit,
hits, expires) and the total size; each row has a *delete* action. Entries
and sizes come from the index files, which are the truth for lookups; hits
and last hits from the store's ``cache_entries`` table (best effort: without
a readable store they show as unknown).
"""

from __future__ import annotations

import time
from typing import Any

import ipywidgets

from kernelflow._format import format_bytes
from kernelflow.widgets._faults import report
from kernelflow.widgets._history_data import _epoch
from kernelflow.widgets._html import esc, format_time, html_table, root, text_table
from kernelflow.widgets._view import LiveHTML, with_fallbacks

__all__ = ["CacheBrowser", "load_entries"]

_KEY_PREFIX = 12


def load_entries() -> tuple[list[dict], str | None]:
    """Every cache entry, newest first, with its hits; and a note if hits are unknown."""
    from kernelflow.store import cache_index

    entries = cache_index.entries()
    usage: dict[str, tuple[Any, Any]] = {}
    note = None
    try:
        from kernelflow.store.queries import cache_entries

        for record in cache_entries().to_dict("records"):
            usage[record["key"]] = (record.get("hits"), record.get("last_hit"))
    except Exception as exc:  # hits are a nicety; the entries themselves come from files
        report("reading cache hits from the store", exc)
        note = f"Hit counts unavailable: {exc}"
    rows = []
    for entry in sorted(entries, key=lambda e: e.created, reverse=True):
        hits, last_hit = usage.get(entry.key, (None, None))
        rows.append(
            {
                "key": entry.key,
                "task": entry.task_name,
                "size": entry.size,
                "created": entry.created,
                "expires": entry.expires,
                "expired": entry.is_expired(),
                "duration": entry.duration,
                "hits": int(hits) if hits is not None and hits == hits else 0,
                "last_hit": _epoch(last_hit),
            }
        )
    return rows, note


def render_cache_html(
    rows: list[dict], note: str | None, message: str | None, live: bool = True
) -> str:
    """The cache table, with a delete action per row when ``live``."""
    total = sum(r["size"] or 0 for r in rows)
    parts = [
        f'<div style="font-weight:700">Task cache: {len(rows):,} '
        f"{'entry' if len(rows) == 1 else 'entries'}, {esc(format_bytes(total))}</div>"
    ]
    for text, color in ((message, "#16a34a"), (note, "#b45309")):
        if text:
            parts.append(f'<div data-kf-note style="color:{color}">{esc(text)}</div>')
    if rows:
        headers = ["Task", "Key", "Size", "Created", "Last hit", "Hits", "Expires"]
        if live:
            headers.append("")
        cells = []
        for r in rows:
            expires = "never" if r["expires"] is None else format_time(r["expires"])
            if r["expired"]:
                expires += " (expired)"
            row = [
                esc(r["task"]),
                f"<code>{esc(r['key'][:_KEY_PREFIX])}</code>",
                esc(format_bytes(r["size"])),
                esc(format_time(r["created"])),
                esc(format_time(r["last_hit"]) or "never"),
                f"{r['hits']:,}",
                esc(expires),
            ]
            if live:
                row.append(
                    f'<button data-kf-id="{esc(r["key"])}" data-kf-action="delete" '
                    'style="cursor:pointer">delete</button>'
                )
            cells.append(row)
        parts.append(html_table(headers, cells))
    else:
        parts.append('<div style="opacity:.75">The cache is empty.</div>')
    return root("".join(parts), "cache")


def render_cache_text(rows: list[dict]) -> str:
    """The cache table as text."""
    total = sum(r["size"] or 0 for r in rows)
    table = text_table(
        ("task", "key", "size", "created", "last hit", "hits", "expires"),
        [
            (
                r["task"],
                r["key"][:_KEY_PREFIX],
                format_bytes(r["size"]),
                format_time(r["created"]),
                format_time(r["last_hit"]) or "never",
                r["hits"],
                "never" if r["expires"] is None else format_time(r["expires"]),
            )
            for r in rows
        ],
    )
    return f"{len(rows):,} cache entries, {format_bytes(total)}\n{table}"


class CacheBrowser(ipywidgets.VBox):
    """The task cache's entries, with their size, use and a delete action.

    Example
    -------
    >>> from kernelflow.widgets import CacheBrowser
    >>> CacheBrowser()  # doctest: +SKIP
    """

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.note: str | None = None
        self.message: str | None = None
        self.table = LiveHTML(on_click=self._clicked)
        self.refresh_button = ipywidgets.Button(description="Refresh", icon="refresh")
        self.refresh_button.on_click(lambda _button: self.refresh())
        super().__init__([self.refresh_button, self.table])
        self.refresh()

    def refresh(self) -> None:
        """List the entries again."""
        try:
            self.rows, self.note = load_entries()
        except Exception as exc:
            report("listing the cache", exc)
            self.note = f"Could not list the cache: {exc}"
        self._render()

    def delete(self, key: str) -> bool:
        """Delete one entry (its result file stays for other keys); True if it existed."""
        from kernelflow.store import cache_index

        removed = cache_index.delete(key)
        task = next((r["task"] for r in self.rows if r["key"] == key), "?")
        self.message = (
            f"Deleted the entry of {task} ({key[:_KEY_PREFIX]}) at {time.strftime('%H:%M:%S')}."
            if removed
            else f"Entry {key[:_KEY_PREFIX]} was already gone."
        )
        self.refresh()
        return removed

    def _clicked(self, key: str, action: str) -> None:
        if action == "delete":
            self.delete(key)

    def _render(self) -> None:
        self.table.html = render_cache_html(self.rows, self.note, self.message)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return with_fallbacks(
            super()._repr_mimebundle_(**kwargs),
            lambda: render_cache_html(self.rows, self.note, None, live=False),
            lambda: render_cache_text(self.rows),
        )
