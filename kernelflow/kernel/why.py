"""Why a ``%%task`` cell missed its cache: the parts of its key, kept and compared.

A cell's cache key is built from :class:`KeyParts`: the hash of its code, the
hash of each input value by name, and the hash of each notebook helper, user
module, file and library it uses. Those parts (not just the key) are kept for every cached run
of a cell in a small side file, ``<home>/cells/<id>.json``, where ``id`` hashes
the notebook path and the cell's name, so a later run of the same cell, in
this kernel or another, can say what differs: the code, which input, which
helper.

The side file keeps the last few entries per cell and is replaced atomically
(:func:`kernelflow.settings.write_private`: a private temporary file, renamed), so
concurrent kernels never see half of one.
"""

from __future__ import annotations

import difflib
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["KeyParts", "describe_changes", "history_append", "history_latest"]

_HISTORY_LIMIT = 10
_SOURCE_LIMIT = 20_000


@dataclass
class KeyParts:
    """What a cell's cache key is made of.

    Attributes
    ----------
    code
        Hash of the cell's normalised code.
    inputs
        Input name -> value hash (excluded inputs are absent).
    helpers
        Notebook function/class name -> hash of its code.
    libraries
        Module or library object name -> hash of its import path and version.
    modules
        User module name -> hash of its source file.
    files
        Path the cell reads -> hash of the file's content (see :mod:`.files`).
    source
        The cell's body, to show how the code changed.
    """

    code: str
    inputs: dict[str, str] = field(default_factory=dict)
    helpers: dict[str, str] = field(default_factory=dict)
    libraries: dict[str, str] = field(default_factory=dict)
    source: str = ""
    modules: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    def key_part(self) -> str:
        """The cell's contribution to the cache key (the source text excluded)."""
        from kernelflow.hashing import hash_bytes

        parts = [self.code]
        for kind, mapping in (
            ("i", self.inputs),
            ("h", self.helpers),
            ("l", self.libraries),
            ("m", self.modules),
            ("f", self.files),
        ):
            parts.extend(f"{kind}:{name}={digest}" for name, digest in sorted(mapping.items()))
        return hash_bytes(*parts)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the source cut to a sane length)."""
        data = asdict(self)
        data["source"] = self.source[:_SOURCE_LIMIT]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KeyParts:
        """The inverse of :meth:`to_json`."""
        return cls(
            code=str(data.get("code", "")),
            inputs=dict(data.get("inputs") or {}),
            helpers=dict(data.get("helpers") or {}),
            libraries=dict(data.get("libraries") or {}),
            source=str(data.get("source", "")),
            modules=dict(data.get("modules") or {}),
            files=dict(data.get("files") or {}),
        )


_CHANGED = {
    "input": "input '{}' changed",
    "helper": "helper '{}' changed (its code, defaults or closure)",
    "module": "module '{}' changed (its source file was edited)",
    "file": "file '{}' changed",
    "library": "library '{}' changed (another version)",
}


def describe_changes(before: KeyParts, after: KeyParts) -> list[str]:
    """One line per difference between two runs' key parts, the first cause first.

    The code comes first: when it changed, names it newly reads or no longer
    reads follow from that and are not listed apart.

    Examples
    --------
    >>> describe_changes(KeyParts("c", {"n": "1"}), KeyParts("c", {"n": "2"}))
    ["input 'n' changed"]
    """
    lines: list[str] = []
    code_changed = before.code != after.code
    if code_changed:
        lines.append("the code changed" + _code_diff(before.source, after.source))
    for label, old, new in (
        ("input", before.inputs, after.inputs),
        ("helper", before.helpers, after.helpers),
        ("module", before.modules, after.modules),
        ("file", before.files, after.files),
        ("library", before.libraries, after.libraries),
    ):
        for name in new:
            if name not in old:
                if not code_changed:
                    lines.append(f"{label} '{name}' is new (not read by the cached run)")
            elif old[name] != new[name]:
                if label == "file" and "missing" in (old[name], new[name]):
                    gone = new[name] == "missing"
                    lines.append(f"file '{name}' {'is missing' if gone else 'appeared'}")
                else:
                    lines.append(_CHANGED[label].format(name))
        for name in old:
            if name not in new and not code_changed:
                lines.append(f"{label} '{name}' is no longer used")
    return lines


def _code_diff(before: str, after: str) -> str:
    if not before or not after:
        return ""
    diff = [
        f"{line[0]} {line[1:]}"
        for line in difflib.unified_diff(
            before.strip().splitlines(), after.strip().splitlines(), lineterm="", n=0
        )
        if not line.startswith(("---", "+++", "@@"))
    ]
    if not diff:
        return " (comments or layout only)"  # cannot happen for a real AST change; kept safe
    shown = diff[:12] + ([f"    ... {len(diff) - 12} more lines"] if len(diff) > 12 else [])
    return ":\n" + "\n".join(f"      {line}" for line in shown)


# --- the side files ---------------------------------------------------------------------


def _history_file(notebook: str, cell: str) -> Path:
    from kernelflow.hashing import hash_bytes
    from kernelflow.settings import paths

    return paths().home / "cells" / f"{hash_bytes('cell history', notebook, cell)}.json"


def _read(file: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(file.read_bytes())
    except (OSError, ValueError):
        return []
    entries = data.get("entries") if isinstance(data, dict) else None
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def history_latest(notebook: str, cell: str) -> dict[str, Any] | None:
    """The newest recorded cached run of a cell: ``key``, ``parts`` (KeyParts), ``t``..."""
    entries = _read(_history_file(notebook, cell))
    if not entries:
        return None
    entry = dict(entries[-1])
    entry["parts"] = KeyParts.from_json(entry.get("parts") or {})
    return entry


def history_append(
    notebook: str, cell: str, key: str, parts: KeyParts, *, duration: float, task_run_id: str
) -> None:
    """Remember one cached run of a cell (best effort: a read-only store only loses ``why``)."""
    from kernelflow.settings import paths, write_private

    file = _history_file(notebook, cell)
    entries = [e for e in _read(file) if e.get("key") != key]
    entries.append(
        {
            "key": key,
            "parts": parts.to_json(),
            "t": time.time(),
            "duration": duration,
            "task_run_id": task_run_id,
        }
    )
    payload = {"notebook": notebook, "cell": cell, "entries": entries[-_HISTORY_LIMIT:]}
    try:
        paths().ensure(file.parent)
        write_private(file, json.dumps(payload).encode())
    except OSError as exc:
        # The cell ran and is cached; only the `%kf why` explanation is lost.
        logging.getLogger("kernelflow.kernel").debug("Cannot write %s: %s", file, exc)
