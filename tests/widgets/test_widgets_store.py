"""Run history, cache browser and lineage view, on a real store (DuckDB file in a temp home)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from kernelflow import flow, task
from kernelflow.settings import paths
from kernelflow.widgets import CacheBrowser, LineageView, RunHistory
from kernelflow.widgets._history_data import load_page

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@task(retries=1, retry_delay_seconds=0)
def square(x: int) -> int:
    if x == 3:
        raise ValueError("three is bad")
    return x * x


@flow
def squares(n: int) -> list:
    return [square.submit(i) for i in range(n)]


@flow(name="other-flow")
def other() -> int:
    return square(2)


def make_history() -> None:
    squares(3)
    squares(4, return_state=True)  # fails on 3
    other()


class TestRunHistory:
    def test_lists_newest_first_and_filters(self) -> None:
        make_history()
        history = RunHistory()
        assert [r["flow"] for r in history.rows] == ["other-flow", "squares", "squares"]
        assert [r["state"] for r in history.rows] == ["Completed", "Failed", "Completed"]
        assert history.rows[1]["task_runs"] == 4
        history.state_filter.value = "Failed"
        assert [r["state"] for r in history.rows] == ["Failed"]
        history.state_filter.value = "(all)"
        history.flow_filter.value = "other-flow"
        assert [r["flow"] for r in history.rows] == ["other-flow"]
        history.flow_filter.value = "(all)"
        tomorrow = dt.date.today() + dt.timedelta(days=1)
        history.since.value = tomorrow
        assert history.rows == [] and "No flow runs match" in history.table.html
        history.since.value = None
        history.until.value = dt.date.today()
        assert len(history.rows) == 3

    def test_pages(self) -> None:
        for _ in range(5):
            other()
        history = RunHistory(page_size=2)
        assert history.total == 5 and len(history.rows) == 2
        assert history.previous_button.disabled and not history.next_button.disabled
        first_page = [r["id"] for r in history.rows]
        history.next_button.click()
        history.next_button.click()
        assert len(history.rows) == 1 and history.next_button.disabled
        history.previous_button.click()
        history.previous_button.click()
        assert [r["id"] for r in history.rows] == first_page
        rows, total = load_page(page=1, page_size=2)
        assert total == 5 and [r["id"] for r in rows] not in (first_page, [])

    def test_opening_a_run_shows_task_runs_timeline_and_logs(self) -> None:
        make_history()
        history = RunHistory(state="Failed")
        run_id = history.rows[0]["id"]
        history.table._handle_message(history.table, {"event": "click", "id": run_id}, [])
        html = history.table.html
        assert history.selected == run_id
        assert html.count("<rect") == 4, "one timeline bar per task run"
        assert "data-kf-timeline" in html and "square-3" in html
        assert "three is bad" in html, "the failed task run's error"
        assert " - Retry 1/" in html, "the run's log lines"
        bundle = history._repr_mimebundle_()
        assert WIDGET_VIEW in bundle and "square-3" in bundle["text/html"]
        assert "squares" in bundle["text/plain"]

    def test_a_deleted_run_says_so(self) -> None:
        from kernelflow.store.db import connect

        make_history()
        history = RunHistory(flow="other-flow")
        run_id = history.rows[0]["id"]
        history.select(run_id)
        assert "data-kf-timeline" in history.table.html
        with connect(paths()) as con:
            con.execute("DELETE FROM task_runs WHERE flow_run_id = ?", [run_id])
            con.execute("DELETE FROM flow_runs WHERE id = ?", [run_id])
        history.refresh_button.click()
        assert "data-kf-deleted" in history.table.html
        assert "no longer in the store" in history.table.html
        assert history.rows == []

    def test_polls_only_while_visible(self) -> None:
        from kernelflow.widgets import _ticker

        history = RunHistory()
        assert history not in _ticker.ticker._items
        history.table._handle_message(
            history.table, {"event": "visible", "view": "v1", "visible": True}, []
        )
        assert history in _ticker.ticker._items
        other()
        history._last_refresh = 0.0
        assert history.tick() is False and len(history.rows) == 1, "a visible history polls"
        history.table._handle_message(
            history.table, {"event": "visible", "view": "v1", "visible": False}, []
        )
        assert history not in _ticker.ticker._items
        other()
        assert history.tick() is True and len(history.rows) == 1, "a hidden one does not"


@task(cache_key_fn=lambda ctx, args: f"key-{args['x']}")
def cached(x: int) -> str:
    return "v" * (100 * x)


@flow
def use_cache() -> list:
    return [cached(1), cached(2), cached(1)]


class TestCacheBrowser:
    def test_lists_entries_with_hits_and_deletes_one(self) -> None:
        use_cache()
        browser = CacheBrowser()
        assert [r["task"] for r in browser.rows] == ["cached", "cached"]
        small, big = sorted(browser.rows, key=lambda r: r["size"])
        assert small["hits"] == 1 and small["last_hit"] is not None, "cached(1) hit once"
        assert big["hits"] == 0 and big["last_hit"] is None
        html = browser.table.html
        assert "2 entries" in html and html.count('data-kf-action="delete"') == 2
        assert small["key"][:12] in html
        browser.table._handle_message(
            browser.table, {"event": "click", "id": big["key"], "action": "delete"}, []
        )
        assert [r["key"] for r in browser.rows] == [small["key"]]
        assert "Deleted the entry of cached" in browser.table.html
        from kernelflow.store import cache_index

        assert [e.key for e in cache_index.entries()] == [small["key"]]
        text = browser._repr_mimebundle_()["text/plain"]
        assert text.startswith("1 cache entries") and small["key"][:12] in text


class TestLineageView:
    def test_cells_edges_and_stale_marks(self, shell: Any) -> None:
        for code in ("a = 1", "b = a + 1", "c = b * 2", "d = 7", "a = 5"):
            shell.run_cell("%%task\n" + code)
        view = LineageView(notebook="ipython-session")
        graph = view.graph
        assert [c.name for c in graph.cells] == ["b", "c", "d", "a"]
        assert sorted(graph.edges) == [("a", "b", "a"), ("b", "c", "b")]
        stale = {c.name: c.stale for c in graph.cells}
        assert stale["b"] == ["'a' changed (re-made by cell 'a')"]
        assert stale["c"] == ["'b' comes from stale cell 'b'"]
        assert stale["a"] == [] and stale["d"] == []
        html = view.view.html
        assert html.count("<g data-kf-cell") == 4 and "stale" in html
        view.view._handle_message(view.view, {"event": "click", "id": "b"}, [])
        assert "data-kf-detail" in view.view.html and "re-made by cell" in view.view.html
        assert "a --a--> b" in view._repr_mimebundle_()["text/plain"]
