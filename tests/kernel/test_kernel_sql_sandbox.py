"""``%kf sql`` on a real IPython shell: every attack of tests/sql_attacks.py is a QueryError.

The same list goes through ``kernelflow.sql`` (tests/store/test_store_sandbox.py)
and the CLI (tests/cli/test_cli_sql_sandbox.py).
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from sql_attacks import attack_params, files_of

from kernelflow.errors import QueryError


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory beside the store, where an attack might write."""
    folder = tmp_path / "outside"
    folder.mkdir()
    return folder


# An empty %kf sql is the magic's own usage error (see the last test).
@pytest.mark.parametrize("attack", [p for p in attack_params() if p.id != "empty"])
def test_an_attack_is_a_query_error_and_writes_nothing(ip: Any, store, outside, attack) -> None:
    ip.user_ns["n"] = 1
    ip.run_cell_magic("task", "", textwrap.dedent("v = n\n"))
    names = ip.run_line_magic("kf", "sql SELECT name FROM task_runs")["name"].tolist()
    assert names == ["v-0"]
    before = files_of(store.home, outside)

    with pytest.raises(QueryError) as caught:
        ip.run_line_magic("kf", f"sql {attack.sql(store.home, outside)}")

    assert attack.message in str(caught.value)
    # In a notebook the error is shown as this one line, not a traceback.
    assert caught.value._render_traceback_() == [f"QueryError: {caught.value}"]
    assert "\n" not in str(caught.value)
    for target in attack.targets(store.home, outside):
        assert not target.exists()
    assert files_of(store.home, outside) == before
    assert ip.run_line_magic("kf", "sql SELECT name FROM task_runs")["name"].tolist() == names


def test_an_empty_query_shows_the_usage(ip: Any) -> None:
    with pytest.raises(UsageError, match="usage: %kf sql SELECT"):
        ip.run_line_magic("kf", "sql   ")
