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

    from kernelflow.deployments.registry import deploy

    path = Path(path)
    if not path.is_file():
        raise ConfigurationError(
            f"No project file {str(path)!r}; write one listing `deployments:` (see "
            "`kernelflow deploy --help`) or pass --file."
        )
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        first = " ".join(str(exc).split())[:200]
        raise ConfigurationError(f"{path} is not valid YAML ({first}); fix it.") from None
    entries = data.get("deployments") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigurationError(f"{path} has no `deployments:` list; add one entry per notebook.")
    allowed = set(inspect.signature(deploy).parameters) - {"update"}
    found: list[dict[str, Any]] = []
    for i, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or "name" not in entry or "notebook" not in entry:
            raise ConfigurationError(f"Entry {i} of {path} needs at least `name:` and `notebook:`.")
        unknown = sorted(set(entry) - allowed)
        if unknown:
            raise ConfigurationError(
                f"Entry {entry['name']!r} of {path} has unknown keys {unknown}; "
                f"allowed: {', '.join(sorted(allowed))}."
            )
        item = dict(entry)
        item["notebook"] = str((path.parent / str(item["notebook"])).resolve())
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
            raise ConfigurationError(f"`after:` entries of {path} make a cycle through {name!r}.")
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
    """Deploy every entry of the project file; (name, ``created``/``updated``/``unchanged``)."""
    from kernelflow.deployments import records
    from kernelflow.deployments.registry import deploy
    from kernelflow.errors import DeploymentNotFoundError

    results = []
    for entry in load_project(path):
        name = entry["name"]
        try:
            before = records.get_deployment(name).updated
        except DeploymentNotFoundError:
            before = None
        after = deploy(**entry, update=True).updated
        status = "created" if before is None else ("unchanged" if after == before else "updated")
        results.append((name, status))
    return results
