"""``kernelflow sql`` as a real program: every attack of tests/sql_attacks.py is one line.

The same list goes through ``kernelflow.sql`` (tests/store/test_store_sandbox.py)
and ``%kf sql`` (tests/kernel/test_kernel_sql_sandbox.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sql_attacks import attack_params, files_of


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory beside the store, where an attack might write."""
    folder = tmp_path / "outside"
    folder.mkdir()
    return folder


@pytest.mark.parametrize("attack", attack_params())
def test_an_attack_is_one_error_line_and_writes_nothing(
    cli_process, recorded, store, outside, attack
):
    runs = store.sql("SELECT id FROM flow_runs ORDER BY id")["id"].tolist()
    assert len(runs) > 1
    before = files_of(store.home, outside)

    done = cli_process("sql", attack.sql(store.home, outside))

    assert done.returncode == 1, done.stdout
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr
    assert attack.message in lines[0]
    for target in attack.targets(store.home, outside):
        assert not target.exists()
    assert files_of(store.home, outside) == before
    assert store.sql("SELECT id FROM flow_runs ORDER BY id")["id"].tolist() == runs
