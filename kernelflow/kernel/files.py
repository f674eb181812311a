"""Files a ``%%task`` cell reads and writes: found in its code (or named with ``--reads``).

Found automatically: a path written as a string literal (or held by an input
variable whose value is a ``str`` or ``os.PathLike``) passed as the first
argument of a reading call: ``open`` (not in a writing mode), ``pandas.read_*``
(and polars' ``read_*``/``scan_*``), ``numpy.load``/``loadtxt``/``genfromtxt``/
``fromfile``/``memmap``, ``pathlib.Path(...).read_text``/``read_bytes``/
``open``, ``json.load(open(...))`` through ``open``. Files opened by helper
functions or library code are not seen: name them with ``--reads``.

A file written by a literal path (or a path variable) passed to a writing call
(see :func:`written_paths`) is kept with the cache entry when small, and written
back on a hit if it differs; a bigger one must still be as the run left it.

A file is keyed by its size and content (a content hash for files up to
:data:`CONTENT_LIMIT` bytes, memoized by size and modification time), so a
touched but unchanged file still hits; a bigger file by its size and
modification time; a missing file as missing. A directory is keyed by the
names, sizes and modification times of its entries.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from typing import Any

__all__ = [
    "CONTENT_LIMIT",
    "changed_written",
    "file_digest",
    "keep_written",
    "path_arguments",
    "path_value",
    "restore_written",
    "written_paths",
]

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


# Calls whose first argument (``dump``: second) is a path they write.
_WRITE_CALLS = frozenset(
    {
        "savefig",
        "save",
        "savez",
        "savez_compressed",
        "savetxt",
        "tofile",
        "imwrite",
        "imsave",
        "write_text",
        "write_bytes",
        "dump",
    }
)


def written_paths(tree: ast.AST) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(literal paths, names of variables) passed as a path to a writing call in ``tree``.

    ``open`` in a writing mode, pandas' ``to_*`` and polars' ``write_*`` methods,
    numpy's ``save*``/``tofile``, ``savefig``, ``Path(...).write_text`` and
    ``joblib.dump(value, path)``.
    """
    literals: dict[str, None] = {}
    names: dict[str, None] = {}
    for node, called in _calls(tree):
        if called == "open":
            if not _writes(node):
                continue
        elif not (called in _WRITE_CALLS or called.startswith(("to_", "write_"))):
            continue
        keywords = ("path", "path_or_buf", "fname", "file", "filename")
        _note_path(node, called, keywords, 1 if called == "dump" else 0, literals, names)
    return tuple(literals), tuple(names)


def path_arguments(tree: ast.AST) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(literal paths, names of variables) passed as a path to a reading call in ``tree``.

    A file opened to append or update (``"a"``, ``"r+"``) is read too.
    """
    literals: dict[str, None] = {}
    names: dict[str, None] = {}
    for node, called in _calls(tree):
        if called == "open":
            if _writes(node) and not _updates(node):
                continue
        elif not (called in _READ_CALLS or called.startswith(("read_", "scan_"))):
            continue
        _note_path(node, called, ("filepath_or_buffer", "file"), 0, literals, names)
    return tuple(literals), tuple(names)


def _calls(tree: ast.AST) -> Iterator[tuple[ast.Call, str]]:
    """Every call in ``tree`` with the name it calls (``open``, ``to_csv``...)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if called is not None:
                yield node, called


# Methods of a path object: Path("data.txt").read_text() works on the receiver's path.
_PATH_METHODS = frozenset({"read_text", "read_bytes", "write_text", "write_bytes", "open"})


def _note_path(
    node: ast.Call,
    called: str,
    keywords: tuple[str, ...],
    position: int,
    literals: dict[str, None],
    names: dict[str, None],
) -> None:
    """Note the path a call works on: its receiver's for a path method, else an argument."""
    func = node.func
    if isinstance(func, ast.Attribute) and called in _PATH_METHODS:
        receiver = func.value
        if isinstance(receiver, ast.Call) and receiver.args:
            _note(receiver.args[0], literals, names)
            return
        if isinstance(receiver, ast.Name) and called != "open":  # p.read_text(); not io.open
            names.setdefault(receiver.id)
            return
    argument = node.args[position] if len(node.args) > position else _keyword(node, keywords)
    if argument is not None:
        _note(argument, literals, names)


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


def _mode(node: ast.Call) -> str:
    mode = node.args[1] if len(node.args) > 1 else _keyword(node, ("mode",))
    return mode.value if isinstance(mode, ast.Constant) and isinstance(mode.value, str) else ""


def _writes(node: ast.Call) -> bool:
    return bool(_WRITE_MODES & set(_mode(node)))


def _updates(node: ast.Call) -> bool:
    """Appending or updating: what was in the file matters too."""
    return bool({"a", "+"} & set(_mode(node)))


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


def keep_written(paths: list[str], task_name: str) -> dict[str, dict[str, str]]:
    """What a run left in the files it wrote: digest, and the content when small.

    ``np.save("x", a)`` writes ``x.npy``: a path that does not exist is tried
    with numpy's suffixes. Kept content goes to the result store.
    """
    from kernelflow.results import write_result

    kept: dict[str, dict[str, str]] = {}
    for path in paths:
        found = next((p for p in (path, f"{path}.npy", f"{path}.npz") if os.path.isfile(p)), None)
        if found is None:
            continue
        entry = {"digest": file_digest(found)}
        if os.path.getsize(found) <= CONTENT_LIMIT:
            with open(found, "rb") as handle:
                record = write_result(handle.read(), task_name=task_name)
            entry.update(result=record.path, checksum=record.checksum)
        kept[found] = entry
    return kept


def changed_written(kept: dict[str, dict[str, str]]) -> str | None:
    """Why a hit cannot put back the files its run wrote (None: it can)."""
    for path, entry in kept.items():
        if "result" not in entry and file_digest(path) != entry["digest"]:
            return f"the file '{path}' it writes, too big to keep in the cache, changed since"
    return None


def restore_written(kept: dict[str, dict[str, str]]) -> None:
    """Write back the files a cached run wrote, where they differ from what it left.

    Raises
    ------
    ResultMissingError
        A kept content is gone from the result store.
    """
    from kernelflow.results import read_result

    for path, entry in kept.items():
        if "result" not in entry or file_digest(path) == entry["digest"]:
            continue
        data = read_result(entry["result"], entry["checksum"])
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        # Written as the cell would (the umask decides the mode), and whole or not at all.
        temporary = f"{path}.{os.urandom(6).hex()}.partial"
        with open(temporary, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
