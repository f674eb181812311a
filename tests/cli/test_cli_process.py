"""The ``kernelflow`` CLI as a real program: a separate process reading a store others wrote.

The runs are recorded by this test process (its journal is still open, so the
CLI process folds the events in itself, as it would for a running notebook),
then ``python -m kernelflow.cli`` (or the installed ``kernelflow`` script) reads them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_flows import breaks

pytestmark = pytest.mark.slow


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The single stderr line of a failed command (asserting there is exactly one)."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert lines[0].startswith("Error: ")
    return lines[0]


def test_runs_ls_show_and_sql_read_what_another_process_recorded(cli_process, recorded):
    listed = cli_process("runs", "ls")
    assert listed.returncode == 0, listed.stderr
    assert recorded.etl_id in listed.stdout and recorded.breaks_id in listed.stdout
    assert listed.stderr == ""

    shown = cli_process("runs", "show", recorded.etl_id[:23])
    assert shown.returncode == 0, shown.stderr
    assert "square-1" in shown.stdout and "Cached" in shown.stdout
    assert "markup stays literal: [red]not red[/red]" in shown.stdout

    counted = cli_process(
        "sql", "SELECT state_name, count(*) AS n FROM task_runs GROUP BY ALL ORDER BY 1", "--csv"
    )
    assert counted.returncode == 0, counted.stderr
    assert counted.stdout.split() == ["state_name,n", "Cached,1", "Completed,5"]


def test_errors_are_one_line_with_exit_codes(cli_process, recorded):
    unknown = cli_process("runs", "show", "no-such-run")
    assert unknown.returncode == 1
    assert "No flow run has an id starting with 'no-such-run'" in one_line_error(unknown)

    bad_sql = cli_process("sql", "SELECT FROM WHERE")
    assert bad_sql.returncode == 1
    assert one_line_error(bad_sql).startswith("Error: Parser Error: syntax error")

    bad_duration = cli_process("cache", "clear", "--older-than", "soon")
    assert bad_duration.returncode == 2
    assert "'soon' is not a duration" in one_line_error(bad_duration)
    assert bad_duration.stdout == ""


def _hold_database(database: Path, read_only: bool) -> subprocess.Popen:
    """Another program (not kernelflow) keeps the database open until its stdin closes."""
    code = (
        "import sys, duckdb\n"
        "con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == 'ro')\n"
        "print('ready', flush=True)\n"
        "sys.stdin.read()\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(database), "ro" if read_only else "rw"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "ready"
    return holder


def _release(holder: subprocess.Popen) -> None:
    holder.stdin.close()
    holder.wait(timeout=30)
    holder.stdout.close()


def test_a_database_held_by_another_program_is_one_line(cli_process, recorded, store):
    assert cli_process("runs", "ls").returncode == 0  # fold the events in first
    holder = _hold_database(store.paths.database, read_only=False)
    try:
        locked = cli_process("runs", "ls", KERNELFLOW_LOCK_TIMEOUT="0.3")
    finally:
        _release(holder)
    assert locked.returncode == 1
    message = one_line_error(locked)
    assert f"(PID {holder.pid}) holds the store database {store.paths.database}" in message
    assert "nothing is lost" in message
    assert cli_process("runs", "ls").returncode == 0  # and it works once the holder is gone


def test_a_reader_that_blocks_compaction_gives_rows_and_one_warning(cli_process, recorded, store):
    """Another program reading the file blocks folding new events in, not reading."""
    assert cli_process("runs", "ls").returncode == 0
    breaks(return_state=True)  # new events, not yet in the database
    holder = _hold_database(store.paths.database, read_only=True)
    try:
        result = cli_process("runs", "ls", KERNELFLOW_LOCK_TIMEOUT="0.3")
    finally:
        _release(holder)
    assert result.returncode == 0, result.stderr
    assert recorded.etl_id in result.stdout  # what was imported before
    warnings = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(warnings) == 1, result.stderr
    assert warnings[0].startswith("Warning: compaction before the query")
    # Once the reader is gone, the new run shows up: nothing was lost.
    assert cli_process("runs", "ls", "--flow", "breaks").stdout.count("Failed") == 2


def test_help_does_not_import_duckdb_or_pandas(child_env):
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from kernelflow.cli import main\n"
        "result = CliRunner().invoke(main, ['runs', 'ls', '--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(sorted(m for m in ('duckdb', 'pandas', 'pyarrow') if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


@pytest.mark.skipif(
    not (Path(sys.executable).parent / "kernelflow").exists(),
    reason="the kernelflow console script is installed by `make test` (pip install -e .)",
)
def test_the_installed_console_script(recorded):
    script = shutil.which("kernelflow", path=str(Path(sys.executable).parent))
    proc = subprocess.run(
        [script, "runs", "ls", "--flow", "etl"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert recorded.etl_id in proc.stdout
