"""Rendering store query results as rich tables, and the small formatters they share.

Every command prints through :func:`console`, so the width rule lives in one
place: in a terminal, tables fit the window (cells wrap); when the output is
piped or captured, tables keep their natural width, so ``kernelflow runs ls |
grep Failed`` sees whole lines instead of wrapped fragments.

Cells are formatted by column name (see :func:`format_cell`): ``duration_s``
as ``1.2 s`` (through :func:`kernelflow._format.format_duration`, shared with
the magics and widgets), timestamps in local time to the second, states coloured by type.
Tables are made from the store's answers: rows as dicts (the ``*_rows``
queries of :mod:`kernelflow.store.queries`, which the run commands use so
that they never import pandas) or pandas DataFrames (``kernelflow sql``);
pandas is only touched through the DataFrame's own methods, so importing this
module stays cheap.
"""

from __future__ import annotations

import datetime as dt
import math
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from kernelflow._format import format_duration

__all__ = [
    "STATE_STYLES",
    "console",
    "error_console",
    "format_cell",
    "format_duration",
    "format_timestamp",
    "frame_table",
    "is_missing",
    "state_text",
]

#: Colour of each state name; names not listed fall back to their type's colour.
STATE_STYLES: dict[str, str] = {
    "Completed": "green",
    "Cached": "cyan",
    "Failed": "red",
    "TimedOut": "red",
    "Crashed": "bold magenta",
    "Cancelled": "dim",
    "Cancelling": "dim",
    "Running": "yellow",
    "Retrying": "yellow",
    "AwaitingRetry": "yellow",
    "Pending": "blue",
    "Scheduled": "blue",
    "Late": "bold yellow",
    "Paused": "dim",
}

#: Width used when stdout is not a terminal: wide enough that no table wraps.
_UNBOUNDED_WIDTH = 10_000


def console(stderr: bool = False) -> Console:
    """The console commands print to: terminal width in a terminal, natural width otherwise.

    Parameters
    ----------
    stderr
        Print to standard error instead of standard output.

    Returns
    -------
    rich.console.Console
        A console bound to the *current* ``sys.stdout``/``sys.stderr`` (click's
        test runner swaps them per invocation, so consoles are not cached).
    """
    stream = sys.stderr if stderr else sys.stdout
    probe = Console(file=stream)
    if probe.is_terminal:
        return probe
    return Console(file=stream, width=_UNBOUNDED_WIDTH, soft_wrap=True)


def error_console() -> Console:
    """A console on standard error (see :func:`console`)."""
    return console(stderr=True)


def format_timestamp(value: Any) -> str:
    """A timestamp in local time, to the second (``2025-06-01 14:03:07``); missing -> ``""``.

    Parameters
    ----------
    value
        A ``datetime`` (pandas ``Timestamp`` included), epoch seconds, or None/NaT.

    Returns
    -------
    str
        The formatted local time.
    """
    if is_missing(value):
        return ""
    if isinstance(value, int | float):
        value = dt.datetime.fromtimestamp(value, tz=dt.timezone.utc)
    if isinstance(value, dt.datetime):
        if hasattr(value, "to_pydatetime"):  # pandas.Timestamp
            value = value.to_pydatetime()
        if value.tzinfo is not None:
            value = value.astimezone()
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def state_text(name: Any, state_type: Any = None) -> Text:
    """A state name coloured by :data:`STATE_STYLES` (or by its type when the name is unknown)."""
    if is_missing(name):
        return Text("")
    style = STATE_STYLES.get(str(name))
    if style is None and not is_missing(state_type):
        style = STATE_STYLES.get(str(state_type).capitalize(), "")
    return Text(str(name), style=style or "")


def format_cell(column: str, value: Any) -> str | Text:
    """Format one cell for display, choosing the format from the column name.

    Parameters
    ----------
    column
        The column name: ``duration_s`` / ``*_duration`` are durations,
        ``state`` / ``state_name`` are states, datetimes are local times.
    value
        The cell value.

    Returns
    -------
    str or rich.text.Text
        What the table shows; ``Text`` keeps markup-like strings (``[1, 2]``)
        from being read as rich markup.
    """
    if column in ("state", "state_name"):
        return state_text(value)
    if column == "duration_s" or column.endswith("duration"):
        return format_duration(value)
    if is_missing(value):
        return ""
    if isinstance(value, dt.datetime):
        return format_timestamp(value)
    if _is_bool(value):
        return "yes" if value else ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | tuple):
        return Text(", ".join(str(v) for v in value))
    return Text(str(value))


def frame_table(
    frame: Any,
    columns: Sequence[str] | None = None,
    *,
    headers: dict[str, str] | None = None,
    title: str | None = None,
    formatted: bool = True,
    no_wrap: Iterable[str] = (),
) -> Table:
    """A rich table of a DataFrame's rows, or of rows given as dicts.

    Parameters
    ----------
    frame
        A pandas DataFrame, or a list of dicts (one per row, as the store's
        ``*_rows`` queries return them: no pandas needed).
    columns
        The columns to show, in order (default: all). Missing columns are skipped.
    headers
        Display names for columns (default: the column name).
    title
        Shown above the table.
    formatted
        Format cells by column name (:func:`format_cell`); ``False`` shows raw
        values, as ``kernelflow sql`` does for columns it does not know.
    no_wrap
        Columns that must never wrap (ids, which users copy).

    Returns
    -------
    rich.table.Table
        Ready for ``console().print(...)``.
    """
    if isinstance(frame, list):
        present = list(dict.fromkeys(name for row in frame for name in row))
        keep = [c for c in (columns or present) if c in present]
        rows = [tuple(row.get(name) for name in keep) for row in frame]
        numeric = {name for i, name in enumerate(keep) if _numbers([r[i] for r in rows])}
    else:
        keep = [c for c in (columns or list(frame.columns)) if c in frame.columns]
        rows = list(frame[keep].itertuples(index=False, name=None))
        numeric = {
            name
            for name in keep
            if str(frame[name].dtype).startswith(("int", "uint", "float", "Int", "Float"))
        }
    headers = headers or {}
    no_wrap = set(no_wrap)
    table = _Table(title=title, title_justify="left", header_style="bold", show_lines=False)
    for name in keep:
        table.add_column(
            headers.get(name, name),
            justify="right" if name in numeric or name == "duration_s" else "left",
            no_wrap=name in no_wrap,
            overflow="fold",
        )
    for row in rows:
        if formatted:
            cells = (format_cell(name, value) for name, value in zip(keep, row, strict=True))
            table.add_row(*cells)
        else:
            table.add_row(*(_raw(value) for value in row))
    return table


class _Table(Table):
    """A rich table that writes plain output (no colours) itself, row by row as text.

    Rich lays out and renders every cell on its own (about 60 µs each: 40 ms
    for the 600 cells of ``runs show``'s task runs). When nothing can differ,
    the rows are written here as text instead (:class:`_PlainRows`): the output
    has no styles (the console has no colour system), every cell and header
    is one line of text without tabs, the columns have no width settings of
    their own and the table fits (so no cell wraps, and each column is as wide
    as its widest cell). Rich still draws the title, and the box's characters
    are its own. The characters are exactly those of rich's table
    (``tests/cli/test_cli_render.py`` compares them); otherwise the table
    renders as rich's own.
    """

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        plain = _PlainRows.of(self, console, options)
        yield from Table.__rich_console__(plain or self, console, options)


class _PlainRows(Table):
    """A copy of a :class:`_Table` whose cells are plain text, laid out without rich."""

    text: list[list[str]]  # per column: the header, then each cell
    natural: list[int]  # per column: the widest of them, in terminal cells

    @classmethod
    def of(cls, table: Table, console: Console, options: ConsoleOptions) -> _PlainRows | None:
        """The table's plain copy, or None when rich's own rendering could differ."""
        if (
            console.color_system is not None
            or not table.box
            or not (table.show_header and table.show_edge and table.pad_edge)
            or table.show_lines
            or table.show_footer
            or table.leading
            or table.padding != (0, 1, 0, 1)
            or table.width is not None
            or table.min_width is not None
            or table.expand
            or table.row_count < 2
        ):
            return None
        text, natural = [], []
        for column in table.columns:
            if column.width or column.min_width or column.max_width or column.ratio:
                return None
            if column.justify not in ("left", "right"):
                return None
            lines = []
            for cell in [column.header, *column.cells]:
                if isinstance(cell, str):  # as rich reads a str cell: its markup and emoji
                    cell = console.render_str(cell, highlight=False, markup=options.markup)
                if not isinstance(cell, Text) or "\n" in cell.plain or "\t" in cell.plain:
                    return None
                lines.append(cell.plain)
            text.append(lines)
            natural.append(max(cell_len(line) for line in lines))
        if sum(natural) + 3 * len(natural) + 1 > options.max_width:
            return None  # some cell would wrap: rich's own layout decides how
        plain = cls.__new__(cls)
        plain.__dict__.update(table.__dict__)  # the same table (title, box...), drawn here
        plain.text, plain.natural = text, natural
        return plain

    def _calculate_column_widths(self, console: Console, options: ConsoleOptions) -> list[int]:
        return [width + 2 for width in self.natural]  # each with its padding of 1 a side

    def _render(self, console: Console, options: ConsoleOptions, widths: list[int]) -> RenderResult:
        safe = console.safe_box if self.safe_box is None else self.safe_box
        assert self.box is not None  # checked by of()
        box = self.box.substitute(options, safe=safe)
        new_line = Segment.line()
        yield Segment(box.get_top(widths))
        yield new_line
        rows = len(self.text[0])
        for index in range(rows):
            if index == 0:
                left, vertical, right = box.head_left, box.head_vertical, box.head_right
            elif index == rows - 1:
                left, vertical, right = box.foot_left, box.foot_vertical, box.foot_right
            else:
                left, vertical, right = box.mid_left, box.mid_vertical, box.mid_right
            cells = []
            for column, lines, width in zip(self.columns, self.text, self.natural, strict=True):
                gap = " " * (width - cell_len(lines[index]))
                cell = gap + lines[index] if column.justify == "right" else lines[index] + gap
                cells.append(f" {cell} ")
            yield Segment(left + vertical.join(cells) + right)
            yield new_line
            if index == 0:
                yield Segment(box.get_row(widths, "head", edge=True))
                yield new_line
        yield Segment(box.get_bottom(widths))
        yield new_line


def _numbers(values: list[Any]) -> bool:
    """Whether a column of plain values holds numbers only (right-aligned, as pandas' are)."""
    present = [v for v in values if not is_missing(v)]
    return bool(present) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in present
    )


def _raw(value: Any) -> Text:
    return Text("NULL", style="dim") if is_missing(value) else Text(str(value))


def _is_bool(value: Any) -> bool:
    # numpy.bool (numpy.bool_ before numpy 2), which pandas hands out, is not a bool subclass.
    return isinstance(value, bool) or type(value).__name__ in ("bool", "bool_")


def is_missing(value: Any) -> bool:
    """Whether a cell value is missing: None, NaN, ``pandas.NA`` or ``NaT``.

    Parameters
    ----------
    value
        Any cell value; lists and arrays count as present.

    Returns
    -------
    bool
        True when a table should show the cell as empty.
    """
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return True
    if isinstance(value, float):
        return math.isnan(value)
    try:
        return bool(value != value)  # NaN-like values (numpy floats) differ from themselves
    except (TypeError, ValueError):
        return False  # arrays and other values without a truth value: present
