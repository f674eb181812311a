"""Importing the store, and compacting when nothing changed, stay cheap."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import kernelflow.store

REPO = Path(__file__).resolve().parents[2]

HEAVY = ("duckdb", "pandas", "pyarrow")


def run_python(code: str, home: Path) -> dict:
    env = dict(os.environ, KERNELFLOW_HOME=str(home))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(out.stdout.splitlines()[-1])


def test_importing_the_store_loads_no_heavy_module(tmp_path):
    loaded = run_python(
        "import sys, json\n"
        "import kernelflow.store, kernelflow.store.journal\n"
        "from kernelflow.store import compact, start_background_compaction\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n",
        tmp_path,
    )
    assert loaded == []


def test_compact_with_nothing_new_does_not_open_the_database(tmp_path):
    code = (
        "import os, sys, json\n"
        # No exit fold: its child would race the next process to the dead journal.
        "os.environ['KERNELFLOW_COMPACT_AT_EXIT'] = 'off'\n"
        "from kernelflow.store import compact\n"
        "from kernelflow.store.journal import record\n"
        "record({'ev': 'log', 'run_id': None, 'kind': None, 'level': 20, 'logger': 'x', "
        "'message': 'hi', 't': 1.0})\n"
        "first = compact()\n"
        "second = compact()\n"
        "print(json.dumps([first.opened, second.opened]))\n"
    )
    assert run_python(code, tmp_path) == [True, False]
    # A fresh process on a fully folded store of dead journals: the previous
    # process's journal is gone, so there is nothing to do and duckdb is not imported.
    loaded = run_python(
        "import sys, json\n"
        "from kernelflow.store import compact\n"
        "report = compact()\n"
        "print(json.dumps([report.opened] + [m for m in ('duckdb', 'pyarrow') "
        "if m in sys.modules]))\n",
        tmp_path,
    )
    assert loaded[0] is True  # it removed the dead journal of the first process
    assert run_python(
        "import sys, json\n"
        "from kernelflow.store import compact\n"
        "report = compact()\n"
        "print(json.dumps([report.opened] + [m for m in ('duckdb', 'pyarrow') "
        "if m in sys.modules]))\n",
        tmp_path,
    ) == [False]


def test_the_compact_name_is_the_function():
    assert callable(kernelflow.store.compact)
    assert set(kernelflow.store.__all__) <= set(dir(kernelflow.store))
    for name in kernelflow.store.__all__:
        assert getattr(kernelflow.store, name) is not None
