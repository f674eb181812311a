"""The ``kernelflow`` commands, called in-process with click's CliRunner on real recorded runs."""

from __future__ import annotations

import csv
import importlib
import io
import json
import os
import time

import duckdb
import pytest
from cli_flows import etl

from kernelflow.cli import COMMAND_MODULES, main
from kernelflow.store.db import connect
from kernelflow.store.journal import record
from kernelflow.store.schema import SCHEMA_VERSION


def lines_of(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def row_of(output: str, *needles: str) -> str:
    """The one table line that contains every needle."""
    found = [line for line in output.splitlines() if all(n in line for n in needles)]
    assert len(found) == 1, f"expected one line with {needles}, got {found}:\n{output}"
    return found[0]


def cells(line: str) -> list[str]:
    """The cells of a rich table row (``│ a │ b │`` -> ``["a", "b"]``)."""
    return [cell.strip() for cell in line.strip().strip("│").split("│")]


class TestHelp:
    def test_lists_every_registered_command_group(self, cli):
        result = cli("--help")
        assert result.exit_code == 0
        for module_name in COMMAND_MODULES:
            command = importlib.import_module(f"kernelflow.cli.{module_name}").command
            assert main.commands[command.name] is command
            assert f"  {command.name} " in result.output

    def test_version(self, cli):
        import kernelflow

        result = cli("--version")
        assert result.exit_code == 0
        assert kernelflow.__version__ in result.output


class TestRunsLs:
    def test_lists_recorded_flow_runs_newest_first(self, cli, recorded):
        result = cli("runs", "ls")
        assert result.exit_code == 0, result.output
        breaks_row = row_of(result.output, recorded.breaks_id)
        etl_row = row_of(result.output, recorded.etl_id)
        assert result.output.index(breaks_row) < result.output.index(etl_row)
        assert "Failed" in cells(breaks_row)
        etl_cells = cells(etl_row)
        assert etl_cells[1] == "etl" and etl_cells[3] == "Completed"
        assert etl_cells[-1] == "3"  # flaky + square twice; the mapped tasks are the subflow's
        fan_out_row = row_of(result.output, "fan-out")
        assert cells(fan_out_row)[-1] == "3"

    def test_filters_by_flow_state_and_limit(self, cli, recorded):
        by_flow = cli("runs", "ls", "--flow", "etl")
        assert recorded.etl_id in by_flow.output
        assert recorded.breaks_id not in by_flow.output and "fan-out" not in by_flow.output

        failed = cli("runs", "ls", "--state", "failed")
        assert recorded.breaks_id in failed.output and recorded.etl_id not in failed.output

        one = cli("runs", "ls", "--limit", "1")
        assert recorded.breaks_id in one.output and recorded.etl_id not in one.output

    def test_no_match_says_so(self, cli, recorded):
        result = cli("runs", "ls", "--flow", "no-such-flow")
        assert result.exit_code == 0
        assert "No flow runs of flow 'no-such-flow'." in result.output

    def test_an_unknown_state_is_a_one_line_usage_error(self, cli):
        result = cli("runs", "ls", "--state", "done")
        assert result.exit_code == 2
        [line] = lines_of(result.output)
        assert line.startswith("Error: Invalid value for '--state': 'done' is not one of ")
        assert "'timedout'" in line

    def test_a_bad_limit_is_a_one_line_usage_error(self, cli):
        result = cli("runs", "ls", "--limit", "0")
        assert result.exit_code == 2
        assert lines_of(result.output) == [
            "Error: Invalid value for '--limit': 0 is not in the range x>=1. "
            "(see 'kernelflow runs ls --help')"
        ]


class TestRunsShow:
    def test_shows_task_runs_with_states_tries_cached_and_logs(self, cli, recorded):
        result = cli("runs", "show", recorded.etl_id)
        assert result.exit_code == 0, result.output
        out = result.output
        assert recorded.etl_id in out and "Completed" in out
        flaky_row = cells(row_of(out, "│ flaky-0"))
        assert flaky_row[1] == "Completed" and flaky_row[3] == "2"  # state, tries
        first, second = cells(row_of(out, "square-0")), cells(row_of(out, "square-1"))
        assert first[1] == "Completed" and first[4] == ""
        assert second[1] == "Cached" and second[4] == "yes"
        assert "Subflow runs (1)" in out and "fan-out" in out
        # Logs: a user's line (markup left alone) and the retry notice of the engine.
        assert "markup stays literal: [red]not red[/red]" in out
        assert "flaky-0 - Task run failed with exception" in out

    def test_accepts_an_id_prefix(self, cli, recorded):
        # UUIDv7 ids start with the time: 20 characters reach the random part.
        result = cli("runs", "show", recorded.etl_id[:20])
        assert result.exit_code == 0, result.output
        assert recorded.etl_id in result.output

    def test_shows_a_failed_runs_message(self, cli, recorded):
        result = cli("runs", "show", recorded.breaks_id, "--no-logs")
        assert result.exit_code == 0
        assert "the breaks flow failed on purpose" in row_of(result.output, "state")
        assert "Logs" not in result.output

    def test_an_unknown_id_is_one_line_on_stderr(self, cli, recorded):
        result = cli("runs", "show", "ffffffff-no-such-run")
        assert result.exit_code == 1
        assert result.stdout == ""
        assert lines_of(result.stderr) == [
            "Error: No flow run has an id starting with 'ffffffff-no-such-run'; list recent "
            "runs with 'kernelflow runs ls'."
        ]

    def test_an_ambiguous_prefix_is_one_line(self, cli, recorded):
        # UUIDv7 ids start with the creation time, so runs made together share a prefix.
        shared = os.path.commonprefix([recorded.etl_id, recorded.breaks_id])  # noqa: RUF071
        assert shared
        result = cli("runs", "show", shared)
        assert result.exit_code == 1
        assert lines_of(result.stderr) == [
            f"Error: Several flow runs have ids starting with {shared!r}; give more "
            "characters (see 'kernelflow runs ls')."
        ]

    def test_a_missing_argument_is_one_line(self, cli):
        result = cli("runs", "show")
        assert result.exit_code == 2
        assert lines_of(result.output) == [
            "Error: Missing argument 'RUN_ID'. (see 'kernelflow runs show --help')"
        ]


class TestSql:
    QUERY = "SELECT name, state_name, run_count FROM task_runs WHERE task_name = ? ORDER BY name"

    def test_prints_a_table(self, cli, recorded):
        result = cli("sql", self.QUERY, "-p", "square")
        assert result.exit_code == 0, result.output
        assert cells(row_of(result.output, "square-0")) == ["square-0", "Completed", "1"]
        assert cells(row_of(result.output, "square-1")) == ["square-1", "Cached", "0"]
        assert "2 rows" in result.output

    def test_json_and_csv_print_every_row(self, cli, recorded):
        as_json = json.loads(cli("sql", self.QUERY, "-p", "double", "--json").output)
        assert [row["name"] for row in as_json] == ["double-0", "double-1", "double-2"]
        assert {row["state_name"] for row in as_json} == {"Completed"}

        as_csv = list(
            csv.DictReader(io.StringIO(cli("sql", self.QUERY, "-p", "flaky", "--csv").output))
        )
        assert as_csv == [{"name": "flaky-0", "state_name": "Completed", "run_count": "2"}]

    def test_max_rows_says_what_is_left_out(self, cli, recorded):
        result = cli("sql", "SELECT name FROM task_runs ORDER BY name", "--max-rows", "2")
        assert result.exit_code == 0
        assert "first 2 of 6 rows" in result.output

    def test_nulls_show_as_null(self, cli, recorded):
        result = cli("sql", "SELECT NULL AS nothing, 1 AS one")
        assert cells(row_of(result.output, "NULL")) == ["NULL", "1"]

    @pytest.mark.parametrize(
        ("query", "message"),
        [
            ("SELEC 1", 'Error: Parser Error: syntax error at or near "SELEC"'),
            (
                "SELECT nope FROM flow_runs",
                'Error: Binder Error: Referenced column "nope" not found',
            ),
            ("SELECT * FROM no_such_table", "Error: Catalog Error: Table with name no_such_table"),
        ],
    )
    def test_a_bad_query_is_one_line_with_duckdbs_message(self, cli, recorded, query, message):
        result = cli("sql", query)
        assert result.exit_code == 1
        assert result.stdout == ""
        assert len(lines_of(result.stderr)) == 1
        assert result.stderr.startswith(message)

    def test_the_store_cannot_be_changed_through_sql(self, cli, recorded):
        result = cli("sql", "DELETE FROM flow_runs")
        assert result.exit_code == 1
        assert len(lines_of(result.stderr)) == 1 and "read-only" in result.stderr
        assert str(len(cli("sql", "SELECT id FROM flow_runs", "--csv").output.split()) - 1) == "3"


class TestCache:
    def test_ls_shows_entries_with_their_hits(self, cli, recorded):
        result = cli("cache", "ls")
        assert result.exit_code == 0, result.output
        row = cells(row_of(result.output, "square"))
        assert row[0] == "square" and row[-1] == "1"  # one hit: the second square(3)
        assert row[-2] == "never"  # no cache_expiration
        assert "1 cache entry" in result.output

    def test_clear_by_task(self, cli, recorded):
        other = cli("cache", "clear", "--task", "other")
        assert other.exit_code == 0 and "Cleared 0 cache entries of task 'other'." in other.output
        result = cli("cache", "clear", "--task", "square")
        assert result.exit_code == 0
        assert "Cleared 1 cache entry of task 'square'." in result.output
        assert "No cache entries." in cli("cache", "ls").output

    def test_clear_older_than(self, cli, recorded):
        young = cli("cache", "clear", "--older-than", "7d")
        assert young.exit_code == 0 and "Cleared 0 cache entries created before" in young.output
        assert "square" in cli("cache", "ls").output
        old = cli("cache", "clear", "--older-than", "0s")
        assert old.exit_code == 0 and "Cleared 1 cache entry created before" in old.output
        assert "No cache entries." in cli("cache", "ls").output

    def test_a_cleared_entry_is_computed_again(self, cli, recorded):
        assert cli("cache", "clear").output.startswith("Cleared 1 cache entry.")
        again = etl()
        states = cli(
            "sql",
            "SELECT state_name FROM task_runs WHERE flow_run_id = ? AND task_name = "
            "'square' ORDER BY name",
            "-p",
            again,
            "--csv",
        ).output.split()
        assert states == ["state_name", "Completed", "Cached"]

    @pytest.mark.parametrize(
        ("value", "problem"),
        [
            ("7x", "is not a duration"),
            ("d", "is not a duration"),
            ("-1d", "is not a duration"),
            ("", "is not a duration"),
            # A bare number would be seconds: refused, since "7" more likely meant days.
            ("7", "has no unit"),
            ("1d2", "has no unit"),
        ],
    )
    def test_a_bad_older_than_is_a_one_line_usage_error(self, cli, value, problem):
        result = cli("cache", "clear", "--older-than", value)
        assert result.exit_code == 2
        assert lines_of(result.output) == [
            f"Error: Invalid value for '--older-than': {value!r} {problem}; write e.g. "
            "30s, 15m, 2h, 7d or 1w (see 'kernelflow cache clear --help')"
        ]


class TestStoreErrors:
    def test_locked_by_another_kernelflow_process_is_one_line(
        self, cli, recorded, store, monkeypatch
    ):
        monkeypatch.setenv("KERNELFLOW_LOCK_TIMEOUT", "0.3")
        with connect(store.paths):  # holds the store's write lock, as a compaction does
            result = cli("runs", "ls")
        assert result.exit_code == 1
        assert lines_of(result.stderr) == [result.stderr.strip()]
        assert result.stderr.startswith("Error: kernelflow process PID")
        assert "nothing is lost" in result.stderr

    def test_a_newer_schema_is_one_line_even_with_events_pending(self, cli, recorded, store):
        cli("runs", "ls")  # fold everything in
        con = duckdb.connect(str(store.paths.database))
        con.execute("INSERT INTO schema_version VALUES (?, now())", [SCHEMA_VERSION + 1])
        con.close()
        record(
            {
                "ev": "log",
                "run_id": None,
                "kind": None,
                "level": 20,
                "logger": "t",
                "message": "pending",
                "t": time.time(),
            }
        )
        result = cli("runs", "ls")
        assert result.exit_code == 1
        assert len(lines_of(result.stderr)) == 1, result.stderr
        assert "has schema version" in result.stderr and "upgrade kernelflow" in result.stderr

    def test_a_corrupt_database_is_one_line(self, cli, store):
        store.paths.ensure()
        store.paths.database.write_bytes(b"not a database" * 500)
        result = cli("sql", "SELECT 1")
        assert result.exit_code == 1
        assert len(lines_of(result.stderr)) == 1, result.stderr
        assert result.stderr.startswith(f"Error: The store database {store.paths.database}")
        assert "move it aside" in result.stderr

    def test_a_bad_setting_is_a_usage_error(self, cli, recorded, monkeypatch):
        monkeypatch.setenv("KERNELFLOW_LOCK_TIMEOUT", "soon")
        result = cli("runs", "ls")
        assert result.exit_code == 2
        assert lines_of(result.stderr) == [
            "Error: KERNELFLOW_LOCK_TIMEOUT='soon' is not a number of seconds; set it to e.g. 10."
        ]
