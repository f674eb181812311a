"""SQL that must not get past the store's query sandbox, for the tests of its three doors.

``kernelflow.sql`` (tests/store/test_store_sandbox.py), ``kernelflow sql``
(tests/cli/test_cli_sql_sandbox.py) and ``%kf sql``
(tests/kernel/test_kernel_sql_sandbox.py) all run each :data:`ATTACKS` query
and expect one :class:`~kernelflow.errors.QueryError` line and nothing written.

Two of them are the attack that started it: with two ``COPY`` statements a
query could write a pickle into ``results/`` and a cache index entry pointing
at it, and the next flow run loaded it as a cached result.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["ATTACKS", "Attack", "attack_params", "files_of"]


@dataclass(frozen=True)
class Attack:
    """One refused query.

    ``query`` and ``writes`` may name ``{home}`` (the store) and ``{outside}``
    (a directory beside it); ``message`` is a part of the one-line error.
    """

    id: str
    query: str
    message: str
    writes: tuple[str, ...] = ()

    def sql(self, home: Path, outside: Path) -> str:
        """The query, for this store and directory."""
        return self.query.format(home=home, outside=outside)

    def targets(self, home: Path, outside: Path) -> list[Path]:
        """The files the query would have written."""
        return [Path(w.format(home=home, outside=outside)) for w in self.writes]


_READ_ONLY = "Store queries are read-only"
_NO_FILES = "no files, network or extensions"
_ONE = "runs one statement"
# A protocol-0 pickle that runs a command when loaded, built in SQL (queries are one line).
_PLANTED = (
    "'cos' || chr(10) || 'system' || chr(10) || '(S''touch {outside}/pwned''' || chr(10) || 'tR.'"
)

ATTACKS = [
    Attack(
        "copy-to-file",
        "COPY (SELECT 1 AS x) TO '{outside}/out.csv'",
        f"{_READ_ONLY}: a COPY statement is not run",
        ("{outside}/out.csv",),
    ),
    Attack(
        "copy-pickle-into-results",
        f"COPY (SELECT {_PLANTED} AS p) TO '{{home}}/results/ab/planted.pkl' "
        "(FORMAT csv, HEADER false, QUOTE '')",
        f"{_READ_ONLY}: a COPY statement is not run",
        ("{home}/results/ab/planted.pkl",),
    ),
    Attack(
        "copy-entry-into-cache",
        'COPY (SELECT \'{{"key": "k", "result": "results/ab/planted.pkl"}}\' AS e) '
        "TO '{home}/cache/k/k.json' (FORMAT csv, HEADER false, QUOTE '')",
        f"{_READ_ONLY}: a COPY statement is not run",
        ("{home}/cache/k/k.json",),
    ),
    Attack("copy-from-file", "COPY flow_runs FROM '/etc/passwd'", f"{_READ_ONLY}: a COPY"),
    Attack(
        "export-database",
        "EXPORT DATABASE '{outside}/dump'",
        f"{_READ_ONLY}: an EXPORT statement",
        ("{outside}/dump",),
    ),
    Attack(
        "attach-read-write",
        "ATTACH '{outside}/other.duckdb' AS other (READ_WRITE)",
        f"{_READ_ONLY}: an ATTACH statement",
        ("{outside}/other.duckdb",),
    ),
    Attack(
        "attach-then-create-table",
        "ATTACH '{outside}/other.duckdb' AS other (READ_WRITE); "
        "CREATE TABLE other.t AS SELECT * FROM flow_runs",
        _ONE,
        ("{outside}/other.duckdb",),
    ),
    Attack("read-csv", "SELECT * FROM read_csv('/etc/passwd', sep = ':')", _NO_FILES),
    Attack("read-text", "SELECT content FROM read_text('/etc/passwd')", _NO_FILES),
    Attack("read-blob", "SELECT content FROM read_blob('/etc/passwd')", _NO_FILES),
    Attack("glob", "SELECT file FROM glob('/etc/*')", _NO_FILES),
    Attack("a-file-as-a-table", "SELECT * FROM '/etc/passwd'", "/etc/passwd"),
    Attack("url", "SELECT * FROM read_csv('https://example.com/data.csv')", _NO_FILES),
    Attack(
        "statement-inside-query-function",
        "SELECT * FROM query('COPY (SELECT 1) TO ''{outside}/q.csv''')",
        "Expected a single SELECT statement",
        ("{outside}/q.csv",),
    ),
    Attack("two-selects", "SELECT 1; SELECT 2", f"{_ONE}, and this has 2"),
    Attack("select-then-delete", "SELECT 1; DELETE FROM flow_runs", _ONE),
    Attack("pragma", "PRAGMA version", f"{_READ_ONLY}: a PRAGMA statement"),
    Attack(
        "pragma-profile-output",
        "PRAGMA profile_output = '{outside}/profile.txt'",
        f"{_READ_ONLY}: a SET statement",  # DuckDB parses PRAGMA x = y as SET
        ("{outside}/profile.txt",),
    ),
    Attack("set-external-access", "SET enable_external_access = true", f"{_READ_ONLY}: a SET"),
    Attack("set-threads", "SET threads = 1", f"{_READ_ONLY}: a SET statement"),
    Attack("reset-lock", "RESET lock_configuration", f"{_READ_ONLY}: a SET statement"),
    Attack("install-httpfs", "INSTALL httpfs", f"{_READ_ONLY}: an INSTALL or LOAD statement"),
    Attack("load-httpfs", "LOAD httpfs", f"{_READ_ONLY}: an INSTALL or LOAD statement"),
    Attack("delete", "DELETE FROM flow_runs", f"{_READ_ONLY}: a DELETE statement"),
    Attack("create-temp-table", "CREATE TEMP TABLE t AS SELECT 1", f"{_READ_ONLY}: a CREATE"),
    Attack("empty", "  ", "The query is empty"),
]


def attack_params() -> list:
    """:data:`ATTACKS` as ``pytest.mark.parametrize`` values, named by id."""
    return [pytest.param(attack, id=attack.id) for attack in ATTACKS]


def files_of(*roots: Path) -> set[str]:
    """Every file and directory under ``roots``, except what compaction itself moves.

    Journals come and go as compaction imports them, and the database's
    write-ahead log exists while a compaction writes: neither is the query's.
    """
    found = set()
    for root in roots:
        for path in root.rglob("*"):
            relative = path.relative_to(root)
            if relative.parts[0] == "journal" or path.name.endswith(".wal"):
                continue
            found.add(f"{root.name}/{relative}")
    return found
