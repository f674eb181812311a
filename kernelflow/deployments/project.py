"""``kernelflow.yaml``: a project's deployments in one file (the role of ``prefect.yaml``).

Example::

    deployments:
      - name: daily-report
        notebook: notebooks/04-scheduled-report.ipynb
        cron: "0 6 * * *"
        timezone: Europe/Berlin
        parameters: {n: 5, day: "2026-01-01"}
        retries: 1
        timeout: 600
      - name: refresh
        notebook: notebooks/refresh.ipynb
        after: daily-report

Keys are :func:`kernelflow.deployments.deploy`'s arguments; notebook paths
are relative to the file. ``kernelflow deploy --all`` applies every entry
with ``update=True``, so applying an unchanged file changes nothing.
Entries are applied in an order where each ``after`` target comes first.
Every entry is checked before any is stored, so a file with one bad entry
changes nothing; the error names the file and the entry.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from kernelflow.errors import ConfigurationError

__all__ = ["PROJECT_FILE", "apply_project", "load_project"]

PROJECT_FILE = "kernelflow.yaml"


def load_project(path: str | Path = PROJECT_FILE) -> list[dict[str, Any]]:
    """The deployment entries of a project file, checked for shape, ``after`` targets first."""
    import yaml

    from kernelflow.deployments.models import check_name
    from kernelflow.deployments.registry import deploy, notebook_path

    path = Path(path)
    try:
        found_file = path.is_file()
    except (OSError, ValueError):  # a name too long, a NUL byte
        found_file = False
    if not found_file:
        raise ConfigurationError(
            f"No project file {str(path)[:200]!r}; write one listing 'deployments:' (see "
            "'kernelflow deploy --help') or pass --file."
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        first = " ".join(str(exc).split())[:200]
        raise ConfigurationError(f"{path} is not valid YAML ({first}); fix it.") from None
    except UnicodeDecodeError as exc:
        raise ConfigurationError(
            f"{path} is not UTF-8 text (byte {exc.start}); save it as UTF-8."
        ) from None
    except RecursionError:
        raise ConfigurationError(f"{path} is nested too deeply to read; flatten it.") from None
    except OSError as exc:
        raise ConfigurationError(f"{path} cannot be read ({exc.strerror}).") from None
    entries = data.get("deployments") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigurationError(f"{path} has no 'deployments:' list; add one entry per notebook.")
    allowed = set(inspect.signature(deploy).parameters) - {"update"}
    found: list[dict[str, Any]] = []
    for i, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or "name" not in entry or "notebook" not in entry:
            raise ConfigurationError(f"Entry {i} of {path} needs at least 'name:' and 'notebook:'.")
        try:
            check_name(entry["name"])
        except ConfigurationError as exc:
            raise ConfigurationError(f"Entry {i} of {path}: {exc}") from None
        where = f"Entry {entry['name']!r} of {path}"
        if any(other["name"] == entry["name"] for other in found):
            raise ConfigurationError(f"{where} appears twice; give each deployment its own name.")
        unknown = sorted(map(str, set(entry) - allowed))  # YAML keys need not be text
        if unknown:
            raise ConfigurationError(
                f"{where} has unknown keys {unknown}; allowed: {', '.join(sorted(allowed))}."
            )
        if not isinstance(entry["notebook"], str) or not entry["notebook"].strip():
            raise ConfigurationError(
                f"{where}: 'notebook:' must be a path, got {entry['notebook']!r}."
            )
        if entry.get("after") is not None and not isinstance(entry["after"], str):
            raise ConfigurationError(
                f"{where}: 'after:' must be a deployment's name, got {entry['after']!r}."
            )
        item = dict(entry)
        try:
            item["notebook"] = str(notebook_path(path.parent / item["notebook"]))
        except ConfigurationError as exc:
            raise ConfigurationError(f"{where}: {exc}") from None
        if isinstance(item.get("tags"), str):
            item["tags"] = [t.strip() for t in item["tags"].split(",") if t.strip()]
        if isinstance(item.get("notify"), str):
            item["notify"] = [item["notify"]]
        found.append(item)
    return _after_first(found, path)


def _after_first(entries: list[dict[str, Any]], path: Path) -> list[dict[str, Any]]:
    by_name = {e["name"]: e for e in entries}
    ordered: list[dict[str, Any]] = []
    placing: set[str] = set()

    def place(entry: dict[str, Any]) -> None:
        name = entry["name"]
        if entry in ordered:
            return
        if name in placing:
            raise ConfigurationError(f"'after:' entries of {path} make a cycle through {name!r}.")
        placing.add(name)
        upstream = by_name.get(entry.get("after") or "")
        if upstream is not None:
            place(upstream)
        placing.discard(name)
        ordered.append(entry)

    for entry in entries:
        place(entry)
    return ordered


def apply_project(path: str | Path = PROJECT_FILE) -> list[tuple[str, str]]:
    """Deploy every entry of the project file; (name, ``created``/``updated``/``unchanged``).

    Every entry is checked (:func:`~kernelflow.deployments.registry.plan`)
    before any is saved: a bad entry raises and leaves the store as it was.

    Raises
    ------
    ConfigurationError
        One line naming the file, the entry and what to change.
    """
    from kernelflow.deployments import records
    from kernelflow.deployments.registry import plan, save
    from kernelflow.errors import DeploymentNotFoundError

    planned: dict[str, Any] = {}
    for entry in load_project(path):
        name = entry["name"]
        try:
            pending = {n: p.deployment for n, p in planned.items()}
            planned[name] = plan(**entry, pending=pending)
        except ConfigurationError as exc:
            raise type(exc)(f"Entry {name!r} of {path}: {exc}") from None
    results = []
    for name, checked in planned.items():
        try:
            before = records.get_deployment(name).updated
        except DeploymentNotFoundError:
            before = None
        after = save(checked, update=True).updated
        status = "created" if before is None else ("unchanged" if after == before else "updated")
        results.append((name, status))
    return results
