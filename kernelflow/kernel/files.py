"""Files a ``%%task`` cell reads: found in its code, or named with ``--reads``, and hashed.

Found automatically: a path written as a string literal (or held by an input
variable whose value is a ``str`` or ``os.PathLike``) passed as the first
argument of a reading call: ``open`` (not in a writing mode), ``pandas.read_*``
(and polars' ``read_*``/``scan_*``), ``numpy.load``/``loadtxt``/``genfromtxt``/
``fromfile``/``memmap``, ``pathlib.Path(...).read_text``/``read_bytes``/
``open``, ``json.load(open(...))`` through ``open``. Files opened by helper
functions or library code are not seen: name them with ``--reads``.

A file is keyed by its size and content (a content hash for files up to
:data:`CONTENT_LIMIT` bytes, memoized by size and modification time), so a
touched but unchanged file still hits; a bigger file by its size and
modification time; a missing file as missing. A directory is keyed by the
names, sizes and modification times of its entries.
"""

from __future__ import annotations

import ast
import os
from typing import Any

__all__ = ["CONTENT_LIMIT", "file_digest", "path_arguments"]

CONTENT_LIMIT = 64 * 1024 * 1024
_READ_CALLS = frozenset(
    {
        "open",
        "load",
        "loadtxt",
        "genfromtxt",
        "fromfile",
        "memmap",
        "read_text",
        "read_bytes",
        "imread",
        "load_workbook",
    }
)
_WRITE_MODES = frozenset("wax+")


def path_arguments(tree: ast.AST) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(literal paths, names of variables) passed as a path to a reading call in ``tree``."""
    literals: dict[str, None] = {}
    names: dict[str, None] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if called is None:
            continue
        if isinstance(func, ast.Attribute) and called in {"read_text", "read_bytes", "open"}:
            # Path("data.txt").read_text(): the path is the receiver's argument.
            receiver = func.value
            if isinstance(receiver, ast.Call) and receiver.args:
                _note(receiver.args[0], literals, names)
            elif isinstance(receiver, ast.Name):
                names.setdefault(receiver.id)
            if called != "open":
                continue
        if not (called in _READ_CALLS or called.startswith(("read_", "scan_"))):
            continue
        if called == "open" and _writes(node):
            continue
        argument = node.args[0] if node.args else _keyword(node, ("filepath_or_buffer", "file"))
        if argument is not None:
            _note(argument, literals, names)
    return tuple(literals), tuple(names)


def _note(node: ast.AST, literals: dict[str, None], names: dict[str, None]) -> None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value:
        literals.setdefault(node.value)
    elif isinstance(node, ast.Name):
        names.setdefault(node.id)


def _keyword(node: ast.Call, wanted: tuple[str, ...]) -> ast.AST | None:
    for keyword in node.keywords:
        if keyword.arg in wanted:
            return keyword.value
    return None


def _writes(node: ast.Call) -> bool:
    mode = node.args[1] if len(node.args) > 1 else _keyword(node, ("mode",))
    return (
        isinstance(mode, ast.Constant)
        and isinstance(mode.value, str)
        and bool(_WRITE_MODES & set(mode.value))
    )


_content_memo: dict[tuple[str, int, int, int], str] = {}


def file_digest(path: str | os.PathLike[str]) -> str:
    """A digest of a file's content (see the module docstring); never raises."""
    from kernelflow.hashing import hash_bytes

    try:
        where = os.path.abspath(os.fspath(path))
        info = os.stat(where)
    except (OSError, TypeError, ValueError):
        return "missing"
    import stat

    if stat.S_ISDIR(info.st_mode):
        return _directory_digest(where)
    if info.st_size > CONTENT_LIMIT:
        return hash_bytes("large file", str(info.st_size), str(info.st_mtime_ns))
    memo_key = (where, info.st_size, info.st_mtime_ns, info.st_ino)
    found = _content_memo.get(memo_key)
    if found is not None:
        return found
    import xxhash

    hasher = xxhash.xxh3_128()
    try:
        with open(where, "rb") as handle:
            while chunk := handle.read(1 << 20):
                hasher.update(chunk)
    except OSError:
        return "unreadable"
    digest = hash_bytes("file", str(info.st_size), hasher.hexdigest())
    if len(_content_memo) > 4096:
        _content_memo.clear()
    _content_memo[memo_key] = digest
    return digest


def _directory_digest(where: str) -> str:
    from kernelflow.hashing import hash_bytes

    parts: list[str] = []
    try:
        with os.scandir(where) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                info = entry.stat(follow_symlinks=True)
                parts.append(f"{entry.name}:{info.st_size}:{info.st_mtime_ns}")
    except OSError:
        return "unreadable"
    return hash_bytes("directory", *parts)


def path_value(value: Any) -> str | None:
    """``value`` as a path if it is one (a ``str`` or ``os.PathLike``), else None."""
    if isinstance(value, str):
        return value if value and len(value) < 4096 and "\n" not in value else None
    if isinstance(value, os.PathLike):
        try:
            return os.fspath(value)
        except TypeError:
            return None
    return None
