"""The journals of a store as files: listing, names, writers, and what is left to fold.

Nothing here imports DuckDB: a process decides whether there is work to
fold, and how much, from file sizes alone.

Names
-----
A process's first journal is ``<host>--<pid>--<start_ticks>--<boot>.jsonl``;
when it passes ``KERNELFLOW_JOURNAL_ROTATE_MB`` the writer goes on in
``<host>--<pid>--<start_ticks>--<boot>--<part>.jsonl`` (``part`` 1, 2, ...,
see :mod:`kernelflow.store.journal`). Both forms name the same *process*
(the name without ``--<part>``), which is what the store's ``process``
columns hold. A part is *finished* once a later part of its process exists:
its writer never appends to it again, so once folded to its end it is
deleted, though the process lives.

Within a process, an event's ``seq`` is ``part * 2**40 + byte offset``: it
orders events across parts and is the same however the fold was batched.

Folded offsets
--------------
After each fold, the offsets it stored in the database are also written to
``<home>/journal/folded.json``, so :func:`pending_bytes` can tell how far
behind the database is without opening it. A crash before that write leaves
older offsets: an over-estimate, never an under-estimate.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from kernelflow.settings import StorePaths, open_private
from kernelflow.store.journal import ProcessIdentity, process_is_alive

__all__ = [
    "PART_STRIDE",
    "SUFFIX",
    "JournalName",
    "finished_parts",
    "forget_header",
    "header",
    "identity",
    "is_dead",
    "list_journals",
    "pending_bytes",
    "read_folded",
    "write_folded",
]

SUFFIX = ".jsonl"
#: ``seq`` = part * PART_STRIDE + byte offset (a part is rotated long before 1 TiB).
PART_STRIDE = 1 << 40
_FOLDED = "folded.json"

# Journal path -> its parsed first line; a complete first line never changes.
_headers: dict[Path, dict] = {}


@dataclass(frozen=True)
class JournalName:
    """A journal file name taken apart: its process and its rotation part."""

    process: str
    part: int

    @classmethod
    def parse(cls, name: str) -> JournalName:
        """``host--pid--ticks--boot[--part].jsonl`` -> (process, part)."""
        stem = name[: -len(SUFFIX)] if name.endswith(SUFFIX) else name
        head, sep, last = stem.rpartition("--")
        # Five fields with a numeric last one: a rotated part (the boot field is hex, so
        # an all-digit boot of an old four-field name is told apart by the field count).
        if sep and last.isdigit() and head.count("--") >= 3:
            return cls(head, int(last))
        return cls(stem, 0)

    def seq_base(self) -> int:
        """The ``seq`` of this part's first byte."""
        return self.part * PART_STRIDE


def list_journals(paths: StorePaths) -> dict[Path, int]:
    """Journal path -> size, for every journal of the store."""
    found = {}
    try:
        with os.scandir(paths.journal) as entries:
            for entry in entries:
                if entry.name.endswith(SUFFIX):
                    try:
                        found[Path(entry.path)] = entry.stat().st_size
                    except FileNotFoundError:
                        pass  # deleted by a compaction in another process
    except (FileNotFoundError, NotADirectoryError):
        pass  # no journal yet (or no store at all: opening it says why, in one line)
    return found


def header(path: Path) -> dict | None:
    """The ``process`` line a journal starts with, or None if not (yet) complete."""
    found = _headers.get(path)
    if found is None:
        try:
            with open(path, "rb") as fh:
                first = fh.read(65536)
        except OSError:
            return None
        end = first.find(b"\n")
        try:
            parsed = json.loads(first[:end]) if end > 0 else None
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and parsed.get("ev") == "process":
            found = _headers[path] = parsed
    return found


def forget_header(path: Path) -> None:
    """Drop the cached header of a deleted journal."""
    _headers.pop(path, None)


def identity(path: Path) -> tuple[str, int, int, str]:
    """(host, pid, start_ticks, boot_id) of a journal's writer: header, else file name."""
    found = header(path)
    if found is not None:
        try:
            return (
                str(found["host"]),
                int(found["pid"]),
                int(found.get("start_ticks") or 0),
                str(found.get("boot_id") or ""),
            )
        except (KeyError, TypeError, ValueError):
            pass
    host, _, rest = JournalName.parse(path.name).process.partition("--")
    pid, _, rest = rest.partition("--")
    ticks = rest.partition("--")[0]
    # The file name holds the host name with unsafe characters replaced: only
    # our own (identically replaced) name can be compared.
    if host == _safe_host():
        host = socket.gethostname()
    try:
        return host, int(pid), int(ticks), ""
    except ValueError:
        return host, -1, 0, ""


def _safe_host() -> str:
    return ProcessIdentity(socket.gethostname(), 0, 0, "").file_name.partition("--")[0]


def is_dead(path: Path) -> bool:
    """True only for a journal whose process is known to be gone (never for other hosts)."""
    host, pid, ticks, boot_id = identity(path)
    return pid > 0 and process_is_alive(host, pid, ticks, boot_id) is False


def finished_parts(journals: dict[Path, int] | list[Path]) -> set[Path]:
    """Journals that a later part of the same process follows: their writer has left them."""
    newest: dict[str, int] = {}
    names = {path: JournalName.parse(path.name) for path in journals}
    for name in names.values():
        newest[name.process] = max(newest.get(name.process, 0), name.part)
    return {path for path, name in names.items() if name.part < newest[name.process]}


def read_folded(paths: StorePaths) -> dict[str, int]:
    """Journal name -> offset folded, as the last fold of any process wrote it."""
    try:
        with open(paths.journal / _FOLDED, "rb") as fh:
            data = json.loads(fh.read())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_folded(paths: StorePaths, offsets: dict[str, int]) -> None:
    """Record the offsets a fold stored (best effort: a missing file over-estimates)."""
    target = paths.journal / _FOLDED
    temporary = target.with_name(f".{_FOLDED}.{os.getpid()}")
    try:
        fd = open_private(temporary, os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(fd, json.dumps(offsets, separators=(",", ":")).encode())
        finally:
            os.close(fd)
        os.replace(temporary, target)  # atomic: a reader sees the old or the new file
    except OSError:
        try:
            temporary.unlink()
        except OSError:
            pass


def pending_bytes(paths: StorePaths) -> int:
    """Bytes of journal not yet folded into the database (an over-estimate at worst).

    File sizes minus the offsets the last fold recorded; a journal no fold
    has seen counts whole. Opens no database and imports no DuckDB: a stat
    per journal and one small file read.

    Parameters
    ----------
    paths
        The store.

    Returns
    -------
    int
        Bytes still to fold; 0 when the database is up to date.
    """
    folded = read_folded(paths)
    total = 0
    for path, size in list_journals(paths).items():
        done = folded.get(path.name, 0)
        if not isinstance(done, int) or done > size:
            done = 0  # a new file under a reused name: all of it is new
        total += size - done
    return total
