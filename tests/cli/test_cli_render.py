"""Tables written as plain text read exactly as rich's own tables."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from rich.console import Console

from kernelflow.cli import render
from kernelflow.cli.render import frame_table

_ROWS = [
    {
        "name": f"task-{i}",
        "state_name": ["Completed", "Failed", "Cached", None][i % 4],
        "duration_s": [0.035, 12.5, None, 3600.0][i % 4],
        "run_count": i % 3 + 1,
        "cached": i % 2 == 0,
        "created": dt.datetime(2026, 12, 5, 9, i % 60, tzinfo=dt.timezone.utc),
        "state_message": ["", "[bold]not markup[/bold]", "KeyError: 'user_id'", None][i % 4],
        "tags": ["a", "b"] if i % 5 == 0 else [],
    }
    for i in range(30)
]


def _printed(table, **console_options) -> str:
    out = Console(file=io.StringIO(), **console_options)
    out.print(table)
    return out.file.getvalue()


def _both(rows, monkeypatch, title="Task runs", **console_options) -> tuple[str, str]:
    """What the table prints, and what rich's own table prints."""
    fast = _printed(frame_table(rows, title=title), **console_options)
    with monkeypatch.context() as patch:
        patch.setattr(render._PlainRows, "of", classmethod(lambda *args: None))
        slow = _printed(frame_table(rows, title=title), **console_options)
    return fast, slow


def _plain(table, **console_options):
    out = Console(file=io.StringIO(), **console_options)
    return render._PlainRows.of(table, out, out.options)


class TestPlainRows:
    def test_plain_output_is_written_as_text(self):
        assert _plain(frame_table(_ROWS), width=10_000) is not None

    @pytest.mark.parametrize("width", [10_000, 200])
    def test_same_characters_as_row_by_row(self, monkeypatch, width):
        fast, slow = _both(_ROWS, monkeypatch, width=width, soft_wrap=True)
        assert fast == slow
        assert "[bold]not markup[/bold]" in fast

    def test_str_cells_are_read_as_rich_reads_them(self, monkeypatch):
        rows = [{"a": "[red]x[/red]", "b": 1.5}, {"a": ":smile: y", "b": 2.0}]
        fast, slow = _both(rows, monkeypatch, width=10_000)
        assert fast == slow

    def test_a_narrow_console_wraps_as_rich_does(self, monkeypatch):
        assert _plain(frame_table(_ROWS), width=40) is None
        fast, slow = _both(_ROWS, monkeypatch, width=40)
        assert fast == slow

    def test_a_cell_with_a_line_break_is_rendered_row_by_row(self, monkeypatch):
        rows = [{"a": "one\ntwo", "b": 1}, {"a": "three", "b": 2}]
        assert _plain(frame_table(rows), width=10_000) is None
        fast, slow = _both(rows, monkeypatch, width=10_000)
        assert fast == slow

    def test_colours_are_rendered_row_by_row(self, monkeypatch):
        assert _plain(frame_table(_ROWS), width=10_000, force_terminal=True) is None
        fast, slow = _both(_ROWS, monkeypatch, width=10_000, force_terminal=True)
        assert fast == slow

    @pytest.mark.parametrize(
        "title",
        [
            None,
            "Task runs (30)",
            "a [b]markup[/b] title",
            "a title far longer than the table is " * 3,
        ],
    )
    @pytest.mark.parametrize("soft_wrap", [True, False])
    def test_titles_as_rich_draws_them(self, monkeypatch, title, soft_wrap):
        rows = [{"a": "x", "n": 1}, {"a": "yyyy", "n": 22}, {"a": "", "n": None}]
        fast, slow = _both(rows, monkeypatch, title=title, width=120, soft_wrap=soft_wrap)
        assert fast == slow

    def test_wide_characters_as_rich_measures_them(self, monkeypatch):
        rows = [{"name": "数据处理", "n": 1}, {"name": "na\u00efve \u2013 ok", "n": 10}]
        fast, slow = _both(rows, monkeypatch, width=10_000)
        assert fast == slow

    def test_an_ascii_console_gets_rich_s_ascii_box(self, monkeypatch):
        def printed(patched: bool) -> str:
            out = io.TextIOWrapper(io.BytesIO(), encoding="ascii", errors="replace")
            console = Console(file=out, width=10_000)
            table = frame_table([{"a": "x", "n": 1}, {"a": "y", "n": 2}])
            with monkeypatch.context() as patch:
                if patched:
                    patch.setattr(render._PlainRows, "of", classmethod(lambda *args: None))
                else:
                    assert render._PlainRows.of(table, console, console.options) is not None
                console.print(table)
            out.flush()
            return out.buffer.getvalue().decode()

        assert printed(False) == printed(True)
        assert "+" in printed(False) and "?" not in printed(False)
