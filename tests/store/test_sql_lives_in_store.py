"""Every SQL statement kernelflow runs lives in ``kernelflow/store/``.

The check parses each module outside the store with :mod:`ast` and reports
three things: a string constant that reads as SQL (a statement keyword first,
then a second keyword such as FROM or INTO), a call to ``.execute``,
``.executemany`` or ``.sql`` on something that looks like a DuckDB
connection, and an import of duckdb or of the store's ``connect``. Parsing
runs in the calling (main) thread: CPython 3.11.7 can crash when two threads
parse at once.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import kernelflow

PACKAGE = Path(kernelflow.__file__).parent
STORE = PACKAGE / "store"

# A statement keyword at the start, then one of the words every real
# statement needs; prose that merely starts with "Select" rarely has both.
_FIRST = r"(?:SELECT|INSERT|UPDATE|DELETE|CREATE|WITH|ALTER|DROP|PRAGMA|COPY|ATTACH)"
_SECOND = r"(?:FROM|INTO|SET|TABLE|WHERE|VALUES)"
_SQL = re.compile(rf"^\s*{_FIRST}\b.*\b{_SECOND}\b", re.IGNORECASE | re.DOTALL)

# Names our code gives a DuckDB connection or cursor; papermill's
# ``execution.execute()`` and the public ``kernelflow.sql`` do not match.
_CONNECTION_NAMES = {"con", "conn", "connection", "cur", "cursor", "db", "duck", "duckdb"}
_CALLS = {"execute", "executemany", "sql"}


def _receiver_name(node: ast.expr) -> str | None:
    """Return the last name of the object a method is called on."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Call):
        return _receiver_name(node.func)
    return None


def _constant_text(node: ast.expr) -> str | None:
    """Return the literal text of a string constant or an f-string's head."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            part.value
            for part in node.values
            if isinstance(part, ast.Constant) and isinstance(part.value, str)
        )
    return None


def sql_outside_store(path: Path, source: str) -> list[str]:
    """Return ``file:line reason`` for each SQL statement or query call in ``source``."""
    found: list[str] = []
    tree = ast.parse(source, filename=str(path))
    # The pieces of an f-string are read once, as the whole f-string, and a
    # docstring is prose ("Create a table artifact.") even when it reads as SQL.
    skipped = {
        id(part)
        for node in ast.walk(tree)
        if isinstance(node, ast.JoinedStr)
        for part in node.values
    }
    skipped |= {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
    }
    for node in ast.walk(tree):
        text = None if id(node) in skipped else _constant_text(node)
        if text is not None and _SQL.match(text):
            found.append(f"{path}:{node.lineno} SQL text {text.strip()[:40]!r}")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _CALLS
        ):
            receiver = _receiver_name(node.func.value)
            if receiver is not None and receiver.lower() in _CONNECTION_NAMES:
                found.append(f"{path}:{node.lineno} {receiver}.{node.func.attr}(...) call")
        # A connection under any other name starts with duckdb or the store's connect().
        if isinstance(node, ast.Import) and any(a.name == "duckdb" for a in node.names):
            found.append(f"{path}:{node.lineno} import duckdb")
        if isinstance(node, ast.ImportFrom) and (
            node.module == "duckdb"
            or (
                node.module in ("kernelflow.store", "kernelflow.store.db")
                and any(a.name == "connect" for a in node.names)
            )
        ):
            found.append(f"{path}:{node.lineno} from {node.module} import ...")
    return sorted(found, key=lambda line: int(line.split(":")[1].split()[0]))


def _modules_outside_store() -> list[Path]:
    return sorted(
        path
        for path in PACKAGE.rglob("*.py")
        if STORE not in path.parents and "labextension" not in path.parts
    )


def test_no_sql_outside_the_store() -> None:
    """No module outside kernelflow/store/ holds SQL text or runs queries."""
    found: list[str] = []
    for path in _modules_outside_store():
        found += sql_outside_store(path.relative_to(PACKAGE.parent), path.read_text())
    assert not found, "SQL outside kernelflow/store/ (move it into a store module):\n" + "\n".join(
        found
    )


def test_the_check_scans_the_package() -> None:
    """The scan sees the modules it should, so the test above is not vacuous."""
    names = {path.relative_to(PACKAGE).as_posix() for path in _modules_outside_store()}
    assert {"engine/transitions.py", "deployments/records.py", "concurrency/_records.py"} <= names
    assert not any(name.startswith("store/") for name in names)


def test_the_check_finds_a_planted_statement(tmp_path: Path) -> None:
    """A temp module with SQL text and a connection call is reported by line."""
    planted = tmp_path / "planted.py"
    planted.write_text(
        "from kernelflow.store.db import connect\n"
        "\n"
        "def rows(con, name):\n"
        '    query = """\n'
        "        select id\n"
        "        from flow_runs where name = ?\n"
        '    """\n'
        "    return con.execute(query, [name]).fetchall()\n"
        "\n"
        "def drop(conn, table):\n"
        '    conn.sql(f"DROP TABLE {table}")\n'
        "\n"
        "def prose(execution):\n"
        '    """Create a table from the rows the notebook printed."""\n'
        "    execution.execute()\n"
        '    return "Selected from the list of updates"\n'
    )
    found = sql_outside_store(planted, planted.read_text())
    assert sorted(found) == sorted(
        [
            f"{planted}:1 from kernelflow.store.db import ...",
            f"{planted}:4 SQL text 'select id\\n        from flow_runs where n'",
            f"{planted}:8 con.execute(...) call",
            f"{planted}:11 conn.sql(...) call",
            f"{planted}:11 SQL text 'DROP TABLE'",
        ]
    )
