"""Journal bytes into DuckDB: every line, its exact offset and its journal, without pyarrow."""

from __future__ import annotations

import os
import subprocess
import sys

import duckdb
import pytest

from kernelflow.store.journal_bytes import load_lines, open_scratch, remove_scratch, temp_table


@pytest.fixture
def con():
    connection = duckdb.connect()
    connection.execute("SET threads = 1")  # as a fold runs
    yield connection
    connection.close()


def load(con, scratch, data: bytes, firsts: list[int]) -> None:
    """Write ``data`` to the scratch file as a fold does, then load it."""
    with open_scratch(scratch) as out:
        out.write(data)
    load_lines(con, scratch, data.count(b"\n"), len(data), firsts)


def loaded(con):
    return con.execute("SELECT file_idx, rel, line FROM _batch ORDER BY rel").fetchall()


def expected(data: bytes, firsts: list[int]) -> list[tuple[int, int, str]]:
    """What load_lines must give: each line's journal, offset and text (U+FFFD for bad bytes)."""
    out, position = [], 0
    for raw in data.split(b"\n")[:-1]:
        file_idx = sum(1 for first in firsts if first <= position) - 1
        out.append((file_idx, position, raw.decode("utf-8", "replace")))
        position += len(raw) + 1
    return out


class TestLoadLines:
    def test_one_journal(self, con, tmp_path):
        data = b'{"ev":"state","x":1}\n{"ev":"task_run","y":"\\u00e9\xc3\xa9"}\n{}\n'
        load(con, tmp_path / "scratch", data, [0])
        assert loaded(con) == expected(data, [0])

    def test_several_journals_keep_their_index(self, con, tmp_path):
        chunks = [b'{"a":1}\n{"a":2}\n', b'{"b":1}\n', b'{"c":1}\n{"c":2}\n{"c":3}\n']
        firsts = [0, len(chunks[0]), len(chunks[0]) + len(chunks[1])]
        temp_table(con, "_files", file_idx=("INTEGER", [0, 1, 2]), first=("BIGINT", firsts))
        data = b"".join(chunks)
        load(con, tmp_path / "scratch", data, firsts)
        assert loaded(con) == expected(data, firsts)

    @pytest.mark.parametrize(
        "torn",
        [
            b'{"ev": "state", "run_id": "\xff\xfe"}',  # invalid UTF-8
            b'{"ev": "state", "run_id": "\xed\xa0\x80"}',  # a lone surrogate (surrogatepass)
            b'{"ev": "st\x01ate"}',  # a control character no JSON line holds raw
            b"\x00\x00\x00\x00",  # what a crash can leave on some file systems
            b'{"ev": "state"}\r',
            b"",  # an empty line
            b'"quoted, with a comma"',
        ],
    )
    def test_a_line_the_csv_reader_refuses_is_loaded_line_by_line(self, con, tmp_path, torn):
        data = b'{"ev":"state","x":1}\n' + torn + b'\n{"ev":"task_run","y":2}\n'
        load(con, tmp_path / "scratch", data, [0])
        assert loaded(con) == expected(data, [0])

    def test_a_line_longer_than_the_csv_readers_default(self, con, tmp_path):
        data = b'{"ev":"log","message":"' + b"x" * (3 << 20) + b'"}\n{"ev":"state"}\n'
        load(con, tmp_path / "scratch", data, [0])
        assert loaded(con) == expected(data, [0])

    def test_the_scratch_file_is_private_and_removable(self, con, tmp_path):
        scratch = tmp_path / "scratch"
        load(con, scratch, b"{}\n", [0])
        assert scratch.stat().st_mode & 0o777 == 0o600
        remove_scratch(scratch)
        remove_scratch(scratch)  # already gone: nothing to do
        assert not scratch.exists()


def test_temp_table_from_lists(con):
    temp_table(con, "_t", word=("VARCHAR", ["a", "\ufffd"]), n=("BIGINT", [1, 2**40]))
    assert con.execute("SELECT * FROM _t ORDER BY n").fetchall() == [("a", 1), ("\ufffd", 2**40)]
    temp_table(con, "_t", word=("VARCHAR", []))
    assert con.execute("SELECT count(*) FROM _t").fetchall() == [(0,)]


def test_a_fold_does_not_import_pyarrow(tmp_path):
    """pyarrow alone is about 43 MB and 0.1 s: a folding process must not load it."""
    code = (
        "import sys\n"
        "from kernelflow.store.journal import record\n"
        "from kernelflow.store import compact\n"
        "record({'ev': 'log', 'run_id': 'r', 'kind': 'flow', 'level': 20, 'logger': 'x',"
        " 'message': 'm', 't': 1.0})\n"
        "assert compact().events >= 1\n"
        "print('pyarrow' in sys.modules)\n"
    )
    env = {"KERNELFLOW_HOME": str(tmp_path / "home"), "KERNELFLOW_COMPACT_AT_EXIT": "off"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip().splitlines()[-1] == "False"
