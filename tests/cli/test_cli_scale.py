"""The run commands stay light on a big store: no pandas, and no big fold on the user's clock."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from kernelflow import settings
from kernelflow.store.compact import compact, pending_bytes

pytestmark = pytest.mark.slow

# Runs the CLI in a fresh interpreter, then prints which heavy modules it imported.
_IMPORTS = textwrap.dedent(
    """
    import sys
    from kernelflow.cli import main
    try:
        main(sys.argv[1:], prog_name="kernelflow")
    except SystemExit as exit:
        assert not exit.code, exit.code
    heavy = ("pandas", "pyarrow", "numpy")
    print("IMPORTED:", ",".join(name for name in heavy if name in sys.modules))
    """
)


def _imported(child_env: dict[str, str], *args: str) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-c", _IMPORTS, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env,
    )
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("IMPORTED:"), proc.stdout
    return [name for name in last.removeprefix("IMPORTED:").strip().split(",") if name]


class TestNoPandas:
    def test_runs_ls_and_show_import_neither_pandas_nor_pyarrow(self, recorded, child_env):
        compact()  # folded already: the commands only read
        assert _imported(child_env, "runs", "ls") == []
        assert _imported(child_env, "runs", "show", recorded.etl_id) == []
        assert _imported(child_env, "deployment", "ls") == []

    def test_rest_payloads_import_no_pandas(self, recorded, child_env):
        compact()
        code = textwrap.dedent(
            f"""
            import sys
            from kernelflow.extension import payloads
            page = payloads.runs_page()
            assert len(page["runs"]) >= 2, page
            detail = payloads.run_detail({recorded.etl_id!r})
            assert detail["task_runs"], detail
            assert payloads.run_logs({recorded.etl_id!r})["total"] > 0
            print("IMPORTED:", [m for m in ("pandas", "pyarrow") if m in sys.modules])
            """
        )
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=child_env
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip().endswith("IMPORTED: []")


RECORD = """
from kernelflow import flow, task

@task
def step(i):
    return i

@flow(name="late")
def late():
    for i in range(10):
        step(i)

late()
"""


def _wait_until_folded(timeout: float = 120) -> None:
    """Wait for the fold the command started in its own process (bounded)."""
    deadline = time.monotonic() + timeout
    while pending_bytes(settings.paths()) > 0:
        assert time.monotonic() < deadline, "the background fold did not finish"
        time.sleep(0.05)


class TestLagLine:
    def test_a_big_backlog_gives_one_warning_line_then_the_runs(self, cli_process, run_python):
        listed = cli_process("runs", "ls")  # an up-to-date, empty store
        assert listed.returncode == 0 and "No flow runs" in listed.stdout
        run_python(RECORD, KERNELFLOW_COMPACT_AT_EXIT="off", KERNELFLOW_COMPACT_SECONDS="3600")
        assert pending_bytes(settings.paths()) > 0

        behind = cli_process("runs", "ls", KERNELFLOW_INLINE_FOLD_BYTES="1")
        try:
            assert behind.returncode == 0, behind.stderr
            (line,) = behind.stderr.splitlines()
            assert line.startswith("Warning: ")
            assert "of recent events are still being folded into the store" in line
            assert line.endswith("run again in a few seconds.")
        finally:
            _wait_until_folded()

        caught_up = cli_process("runs", "ls", KERNELFLOW_INLINE_FOLD_BYTES="1")
        assert caught_up.returncode == 0, caught_up.stderr
        assert caught_up.stderr == ""
        assert "late" in caught_up.stdout
